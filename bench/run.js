/* global console, process, gc, performance, AbortController, AbortSignal, DOMException, URL, setImmediate, setTimeout, clearTimeout */
/**
 * taproot benchmarks: `npm run bench` (builds, then runs this file with
 * `node --expose-gc`). Every figure is measured in this one process, side by
 * side with
 *   (a) hand-linked AbortControllers: the child's controller listens to the
 *       parent's signal and removes its listener when canceled, and
 *   (b) AbortSignal.any([parent.signal, own.signal]),
 * and checked against the bars of issue 2. Times are medians of several
 * samples taken after a warmup; heap figures come from gc() and
 * process.memoryUsage().heapUsed.
 *
 * Options: `node --expose-gc bench/run.js --quick` (fewer samples),
 * `--json out.json` (also write the raw figures), `--only createCancel,trees`
 * (run some suites only: rootsAndErr, createCancel, timeouts, trees, values,
 * heap, listeners, hooksCost, size).
 */
import { getEventListeners } from "node:events";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { measure } from "mitata";
import * as context from "../dist/index.js";
import { setDebugHooks } from "../dist/introspect.js";

if (typeof gc !== "function") {
  console.error("bench/run.js needs --expose-gc: run it with `npm run bench`");
  process.exit(2);
}

const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick");
const JSON_OUT = argv.includes("--json") ? argv[argv.indexOf("--json") + 1] : null;
const ONLY = argv.includes("--only") ? argv[argv.indexOf("--only") + 1].split(",") : null;

// ---------------------------------------------------------------------------
// Harness

/** Length of one timed call of a per-operation workload, in ns: a sample, for mitata. */
const CALL_NS = 200_000;
/** CPU time mitata spends sampling each clock of each workload, in ns. */
const MIN_CPU_NS = (QUICK ? 100 : 300) * 1e6;
const WARMUP_MS = QUICK ? 40 : 150;

const now = () => process.hrtime.bigint();
let sink = 0;

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cpuNs() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** timeLoop runs fn(n) once and returns [wall ns, CPU ns of the whole process]. */
function timeLoop(fn, n) {
  const c0 = cpuNs();
  const t0 = now();
  sink ^= fn(n) | 0;
  const wall = Number(now() - t0);
  return [wall, cpuNs() - c0];
}

/**
 * A timing: `cpu` is the median CPU time of the process per operation (what
 * the code costs; it does not count the time this process waits for a core
 * on a loaded box), `wall` the median elapsed time. Bars are judged on cpu.
 */
const timing = (cpu, wall) => ({ cpu, wall });

/** cpuClock is the process's CPU time in ns (1 µs resolution): the clock that bars are judged on. */
function cpuClock() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/**
 * perOp times `fn(n)`, which must perform n operations in its own loop (so
 * that the loop is compiled with the code it measures). It warms up for
 * WARMUP_MS while it picks n so that one call lasts about CALL_NS (far above
 * the CPU clock's resolution, and above mitata's batching threshold, so that
 * each sample is one call), then lets mitata's `measure()` sample the call
 * twice, once on the process's CPU clock and once on its own wall clock, and
 * returns the medians per operation.
 */
async function perOp(fn) {
  let n = 1;
  const warmEnd = performance.now() + WARMUP_MS;
  for (;;) {
    const [ns] = timeLoop(fn, n);
    if (ns >= CALL_NS || n >= 1 << 26) {
      if (performance.now() >= warmEnd) break;
    } else {
      n = ns < 1e4 ? n * 8 : Math.max(n + 1, Math.ceil((n * CALL_NS * 1.1) / ns));
    }
  }
  const call = () => {
    sink ^= fn(n) | 0;
  };
  const opts = { min_cpu_time: MIN_CPU_NS, gc: false };
  const cpu = await measure(call, { ...opts, now: cpuClock });
  const wall = await measure(call, opts);
  return timing(cpu.p50 / n, wall.p50 / n);
}

/** once times one call of fn, in ms: [wall, cpu]. */
function once(fn) {
  const [wall, cpu] = timeLoop(fn, 1);
  return [wall / 1e6, cpu / 1e6];
}

/** medianOf turns [wall, cpu] pairs into a timing. */
function medianOf(pairs) {
  return timing(median(pairs.map((p) => p[1])), median(pairs.map((p) => p[0])));
}

/** settle lets queued warnings, promise jobs and finalizers run, then collects garbage. */
async function settle() {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
}

/**
 * quiet settles, then waits while the collector's background threads finish
 * sweeping what the forced collections left: timed otherwise, a walk over a
 * 100k-node tree pays for that work on the other core (process CPU) and for
 * the memory bandwidth it takes.
 */
async function quiet() {
  await settle();
  await new Promise((r) => setTimeout(r, QUICK ? 50 : 200));
}

function heapUsed() {
  return process.memoryUsage().heapUsed;
}

// ---------------------------------------------------------------------------
// The alternatives

/** acChild is the hand-linked AbortController child of `parent` (an AbortSignal): [signal, cancel]. */
function acChild(parent) {
  const ac = new AbortController();
  if (parent.aborted) {
    ac.abort(parent.reason);
    return [ac.signal, () => {}];
  }
  const onAbort = () => ac.abort(parent.reason);
  parent.addEventListener("abort", onAbort);
  const cancel = () => {
    parent.removeEventListener("abort", onAbort);
    ac.abort();
  };
  return [ac.signal, cancel];
}

/** anyChild is the AbortSignal.any child of `parent` (an AbortSignal): [signal, cancel]. */
function anyChild(parent) {
  const own = new AbortController();
  const signal = AbortSignal.any([parent, own.signal]);
  return [signal, () => own.abort()];
}

const HOUR = 3_600_000;

/** acTimeoutChild is (a) with a deadline from AbortSignal.timeout, linked by hand too. */
function acTimeoutChild(parent, ms) {
  const ac = new AbortController();
  const t = AbortSignal.timeout(ms);
  const onAbort = () => {
    parent.removeEventListener("abort", onAbort);
    t.removeEventListener("abort", onTimeout);
    ac.abort(parent.reason);
  };
  const onTimeout = () => {
    parent.removeEventListener("abort", onAbort);
    ac.abort(t.reason);
  };
  parent.addEventListener("abort", onAbort);
  t.addEventListener("abort", onTimeout);
  const cancel = () => {
    parent.removeEventListener("abort", onAbort);
    t.removeEventListener("abort", onTimeout);
    ac.abort();
  };
  return [ac.signal, cancel];
}

/** anyTimeoutChild is (b) with a deadline: AbortSignal.any([parent, own, AbortSignal.timeout(ms)]). */
function anyTimeoutChild(parent, ms) {
  const own = new AbortController();
  const signal = AbortSignal.any([parent, own.signal, AbortSignal.timeout(ms)]);
  return [signal, () => own.abort()];
}

/** acTimerChild is (a) with a deadline from a plain setTimeout (unref'd), cleared on cancel. */
function acTimerChild(parent, ms) {
  const ac = new AbortController();
  const onAbort = () => {
    clearTimeout(timer);
    ac.abort(parent.reason);
  };
  const timer = setTimeout(() => {
    parent.removeEventListener("abort", onAbort);
    ac.abort(new DOMException("timed out", "TimeoutError"));
  }, ms).unref();
  parent.addEventListener("abort", onAbort);
  const cancel = () => {
    clearTimeout(timer);
    parent.removeEventListener("abort", onAbort);
    ac.abort();
  };
  return [ac.signal, cancel];
}

// ---------------------------------------------------------------------------
// Results

/** rows of the table: { group, name, unit, t (taproot), a, b, note } */
const rows = [];
/** bars: { bar, pass, figure } */
const bars = [];
let phase = "setup";
const warnings = [];
/** Signals the alternatives use as long-lived parents: a warning about one of them is theirs, not taproot's. */
const baselineTargets = new WeakSet();
const base = (signal) => (baselineTargets.add(signal), signal);
process.on("warning", (w) =>
  warnings.push({
    phase,
    name: w.name,
    message: w.message,
    ours: !(w.target !== undefined && baselineTargets.has(w.target)),
  }),
);

function fmt(x, unit) {
  if (x === null || x === undefined) return "–";
  if (typeof x === "string") return x;
  if (unit === "ns") {
    if (x >= 1e6) return `${(x / 1e6).toFixed(2)} ms`;
    if (x >= 1e4) return `${(x / 1e3).toFixed(1)} µs`;
    if (x >= 100) return `${x.toFixed(0)} ns`;
    return `${x.toFixed(x >= 10 ? 1 : 2)} ns`;
  }
  if (unit === "ms") return `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ms`;
  if (unit === "B") return `${x.toFixed(x >= 100 ? 0 : 1)} B`;
  return String(x);
}

/** cpu is the figure a bar is judged on: the CPU median of a timing, or the number itself. */
const cpu = (x) => (x !== null && typeof x === "object" ? x.cpu : x);

/** cell prints a timing as "cpu [wall]". */
function cell(x, unit) {
  if (x !== null && typeof x === "object") return `${fmt(x.cpu, unit)} [${fmt(x.wall, unit)}]`;
  return fmt(x, unit);
}

/** ratio prints how many times x costs what t costs (alternative / taproot). */
function ratio(t, x) {
  const tc = cpu(t);
  const xc = cpu(x);
  if (typeof tc !== "number" || typeof xc !== "number" || tc <= 0) return "–";
  const r = xc / tc;
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

const W = [56, 22, 22, 22, 9, 9];

function row(group, name, unit, t, a, b, note = "") {
  // Bytes retained per cycle are ≈ 0 for taproot: a ratio to them means nothing.
  const noRatio = name.startsWith("retained");
  const ra = noRatio ? "–" : ratio(t, a);
  const rb = noRatio ? "–" : ratio(t, b);
  const r = { group, name, unit, t, a, b, note, ra, rb };
  rows.push(r);
  const cells = [
    name.padEnd(W[0]),
    cell(t, unit).padStart(W[1]),
    cell(a, unit).padStart(W[2]),
    cell(b, unit).padStart(W[3]),
    r.ra.padStart(W[4]),
    r.rb.padStart(W[5]),
  ];
  console.log(cells.join(" ") + (note ? `  ${note}` : ""));
  return r;
}

function bar(text, pass, figure) {
  bars.push({ bar: text, pass, figure });
}

const headers = [];
function header(title, a = "(a) AC", b = "(b) any") {
  headers.push({ title, a, b, at: rows.length });
  console.log(`\n## ${title}`);
  console.log(
    [
      "workload".padEnd(W[0]),
      "taproot".padStart(W[1]),
      a.padStart(W[2]),
      b.padStart(W[3]),
      "a/taproot".padStart(W[4]),
      "b/taproot".padStart(W[5]),
    ].join(" "),
  );
}

// ---------------------------------------------------------------------------
// Workloads

async function rootsAndErr() {
  phase = "roots";
  header("Roots and reads (ns/op)", "(a) AC", "(b) any");

  // background(): one frozen singleton, nothing allocated per call.
  const bg = context.background;
  const first = bg();
  const tBg = await perOp((n) => {
    let same = 0;
    for (let i = 0; i < n; i++) same += bg() === first ? 1 : 0;
    return same;
  });
  // Heap growth over 1M calls without a gc in between (a 16 B object per call would show 16 MB).
  const keep = [];
  gc();
  const h0 = heapUsed();
  let distinct = 0;
  for (let i = 0; i < 1e6; i++) if (bg() !== first) distinct++;
  const grew = (heapUsed() - h0) / 1e6;
  keep.push(distinct);
  row("roots", "background() (same object every call)", "ns", tBg, null, null);
  bar(
    "`background()` allocates nothing",
    distinct === 0 && Object.isFrozen(first) && grew < 1,
    `${distinct} distinct objects in 1M calls; heap +${grew.toFixed(3)} B/call; frozen`,
  );

  // err() on a live context: 8 contexts round-robin so the load cannot be hoisted out of the loop.
  const [parent, cancelParent] = context.withCancel(context.background());
  const ctxs = [];
  const cancels = [];
  for (let i = 0; i < 8; i++) {
    const [c, f] = context.withCancel(parent);
    ctxs.push(c);
    cancels.push(f);
  }
  const tErr = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (ctxs[i & 7].err() === null) live++;
    return live;
  });
  const key = context.createKey("k");
  const vctxs = ctxs.map((c) => context.withValue(c, key, 1));
  const tErrV = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (vctxs[i & 7].err() === null) live++;
    return live;
  });
  const acs = [];
  for (let i = 0; i < 8; i++) acs.push(new AbortController().signal);
  const tAborted = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (!acs[i & 7].aborted) live++;
    return live;
  });
  const anys = acs.map((s) => AbortSignal.any([s]));
  const tAbortedAny = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (!anys[i & 7].aborted) live++;
    return live;
  });
  // The loop itself, to read the others against.
  const plain = ctxs.map(() => ({ err: null }));
  const tField = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (plain[i & 7].err === null) live++;
    return live;
  });
  row(
    "reads",
    "err() on a live withCancel ctx (vs signal.aborted)",
    "ns",
    tErr,
    tAborted,
    tAbortedAny,
  );
  row("reads", "err() on a withValue over it", "ns", tErrV, tAborted, tAbortedAny);
  row("reads", "reference: plain object field read, same loop", "ns", tField, null, null);
  bar(
    "`err()` on a live context ≤ 5 ns",
    cpu(tErr) <= 5,
    `${cell(tErr, "ns")} (withValue over it: ${cell(tErrV, "ns")}; a plain field read in the same loop: ${cell(tField, "ns")})`,
  );

  // done() and signal cost nothing until asked for: a fresh child has neither.
  const [lazy, cancelLazy] = context.withCancel(parent);
  const untouched = lazy._done === null && lazy._ctrl === null;
  cancelLazy();
  for (const f of cancels) f();
  cancelParent();
  bar(
    "`done()`/`signal` cost nothing until asked for",
    untouched,
    untouched
      ? "a fresh child holds no Promise and no AbortController"
      : "a fresh child already holds one",
  );
  return keep;
}

async function createCancel() {
  phase = "create+cancel";
  header("Create + cancel a child of a long-lived cancelable parent (ns/op)");
  const [parent, cancelParent] = context.withCancel(context.background());
  const parentSignal = base(new AbortController().signal);
  const withCancel = context.withCancel;

  const tUntouched = await perOp((n) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withCancel(parent);
      cancel();
    }
    return n;
  });
  const tTouched = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [ctx, cancel] = withCancel(parent);
      const s = ctx.signal;
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  const tAC = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = acChild(parentSignal);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  const tAny = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = anyChild(parentSignal);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  row("create", "withCancel + cancel, .signal untouched", "ns", tUntouched, tAC, tAny);
  row("create", "withCancel + cancel, .signal touched", "ns", tTouched, tAC, tAny);
  await settle();

  // The same with 10,000 live siblings under the parent. Each contender is measured with only
  // its own siblings alive: the baselines' 20,000 controllers and signals would otherwise burden
  // every collection during taproot's measurement (+50% on taproot here), and the other way round.
  phase = "create+cancel, 10k siblings";
  const sib = [];
  for (let i = 0; i < 10_000; i++) sib.push(withCancel(parent)[1]);
  await settle();
  const tUntouched10k = await perOp((n) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withCancel(parent);
      cancel();
    }
    return n;
  });
  const tTouched10k = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [ctx, cancel] = withCancel(parent);
      const s = ctx.signal;
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  for (const f of sib) f();
  await settle();
  const sibAC = [];
  for (let i = 0; i < 10_000; i++) sibAC.push(acChild(parentSignal)[1]);
  await settle();
  const tAC10k = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = acChild(parentSignal);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  for (const f of sibAC) f();
  await settle();
  const anySignal = base(new AbortController().signal);
  const sibAny = [];
  for (let i = 0; i < 10_000; i++) sibAny.push(anyChild(anySignal));
  await settle();
  const tAny10k = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = anyChild(anySignal);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  for (const [, f] of sibAny) f();
  row(
    "create",
    "… with 10,000 live siblings, .signal untouched",
    "ns",
    tUntouched10k,
    tAC10k,
    tAny10k,
  );
  row("create", "… with 10,000 live siblings, .signal touched", "ns", tTouched10k, tAC10k, tAny10k);
  cancelParent();
  await settle();

  bar(
    "create+cancel, `.signal` untouched ≤ 100 ns",
    cpu(tUntouched) <= 100,
    cell(tUntouched, "ns"),
  );
  bar(
    "… ≥ 100× faster than hand-linked AbortController (a)",
    cpu(tAC) / cpu(tUntouched) >= 100,
    `${ratio(tUntouched, tAC)} (${fmt(cpu(tAC), "ns")} / ${fmt(cpu(tUntouched), "ns")})`,
  );
  bar(
    "… ≥ 100× faster than AbortSignal.any (b)",
    cpu(tAny) / cpu(tUntouched) >= 100,
    `${ratio(tUntouched, tAny)} (${fmt(cpu(tAny), "ns")} / ${fmt(cpu(tUntouched), "ns")})`,
  );
  bar(
    "… same with 10,000 live siblings: ≤ 100 ns and ≥ 100× (a) and (b)",
    cpu(tUntouched10k) <= 100 &&
      cpu(tAC10k) / cpu(tUntouched10k) >= 100 &&
      cpu(tAny10k) / cpu(tUntouched10k) >= 100,
    `${cell(tUntouched10k, "ns")}; ${ratio(tUntouched10k, tAC10k)} (a), ${ratio(tUntouched10k, tAny10k)} (b)`,
  );
  bar(
    "`.signal` touched: no slower than hand-linked AbortController",
    cpu(tTouched) <= cpu(tAC) && cpu(tTouched10k) <= cpu(tAC10k),
    `${fmt(cpu(tTouched), "ns")} vs ${fmt(cpu(tAC), "ns")}; 10k siblings: ${fmt(cpu(tTouched10k), "ns")} vs ${fmt(cpu(tAC10k), "ns")}`,
  );
}

async function timeouts() {
  phase = "withTimeout";
  header(
    "withTimeout(parent, 1h) create + cancel (ns/op)",
    "(a) AC+AS.timeout",
    "(b) any+AS.timeout",
  );
  const [parent, cancelParent] = context.withCancel(context.background());
  const parentSignal = base(new AbortController().signal);
  const withTimeout = context.withTimeout;
  const tT = await perOp((n) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withTimeout(parent, HOUR);
      cancel();
    }
    return n;
  });
  await settle();
  const tA = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = acTimeoutChild(parentSignal, HOUR);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  await settle();
  const tB = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = anyTimeoutChild(parentSignal, HOUR);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  await settle();
  const tTimer = await perOp((n) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [s, cancel] = acTimerChild(parentSignal, HOUR);
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  });
  cancelParent();
  await settle();
  row("timeout", "withTimeout(parent, 1h) + cancel", "ns", tT, tA, tB);
  row("timeout", "reference: hand-linked AC + setTimeout/clearTimeout", "ns", null, tTimer, null);
  const fastest = Math.min(cpu(tA), cpu(tB));
  bar(
    "`withTimeout(parent, 1h)` create+cancel ≥ 5× faster than AbortSignal.timeout-based code",
    fastest / cpu(tT) >= 5,
    `${ratio(tT, tA)} vs (a) AC+AbortSignal.timeout, ${ratio(tT, tB)} vs (b) AbortSignal.any(+timeout); taproot ${cell(tT, "ns")}`,
  );
}

/** buildShape creates `total` descendants under root in the given shape, with `child(parentNode)` → node. */
function buildShape(shape, total, rootNode, child) {
  const all = [];
  if (shape === "flat") {
    for (let i = 0; i < total; i++) all.push(child(rootNode));
  } else if (shape === "10-way") {
    const queue = [rootNode];
    let q = 0;
    while (all.length < total) {
      const p = queue[q++];
      for (let k = 0; k < 10 && all.length < total; k++) {
        const c = child(p);
        all.push(c);
        queue.push(c);
      }
    }
  } else {
    // "chain": 100 chains of depth 1000 (or fewer, deeper, if total says so)
    const depth = 1000;
    for (let chain = 0; all.length < total; chain++) {
      let p = rootNode;
      for (let d = 0; d < depth && all.length < total; d++) {
        p = child(p);
        all.push(p);
      }
    }
  }
  return all;
}

/**
 * buildTaproot creates `total` withCancel descendants under root in the given
 * shape, calling withCancel directly (as a program's loop would). With
 * `garbage`, it also allocates a short-lived object between two contexts,
 * as a program does, so that the young-generation collector copies the
 * contexts out from among garbage instead of promoting their pages whole.
 */
function buildTaproot(shape, total, root, garbage) {
  const all = [];
  let junk = null;
  if (shape === "flat") {
    for (let i = 0; i < total; i++) {
      all.push(context.withCancel(root)[0]);
      if (garbage) junk = { i, next: junk === null ? null : [i, i, i] };
    }
  } else if (shape === "10-way") {
    let q = 0;
    const parents = [root];
    while (all.length < total) {
      const p = parents[q++];
      for (let k = 0; k < 10 && all.length < total; k++) {
        const c = context.withCancel(p)[0];
        all.push(c);
        parents.push(c);
        if (garbage) junk = { k, next: junk === null ? null : [k, k, k] };
      }
    }
  } else {
    while (all.length < total) {
      let p = root;
      for (let d = 0; d < 1000 && all.length < total; d++) {
        p = context.withCancel(p)[0];
        all.push(p);
        if (garbage) junk = { d, next: junk === null ? null : [d, d, d] };
      }
    }
  }
  sink ^= junk === null ? 0 : 1;
  return all;
}

/**
 * walkTree reads each node once, by plain code: the walk of cancelTree
 * without its writes, the floor for anything that must visit every node.
 */
function walkTree(root) {
  let live = 0;
  const resume = [];
  let n = root;
  for (;;) {
    if (n._err === null) live++;
    const down = n._head;
    const next = n._next;
    if (down !== null) {
      if (next !== null) resume.push(next);
      n = down;
    } else if (next !== null) n = next;
    else {
      const r = resume.pop();
      if (r === undefined) break;
      n = r;
    }
  }
  return live;
}

/**
 * treeShape measures one shape, in a process of its own (see trees). Each
 * round builds a 100k tree and times either taproot's cancel() or, as the
 * floor, plain code reading each node once (rounds alternate, so that both
 * see the same mix of heap states; a tree read before its cancel would be
 * in the cache). The first two rounds only warm up. Two heap states:
 * "clean", built into an empty young generation, so that the collector
 * later promotes the contexts' pages whole, in the order they were made;
 * and "among garbage", where the young-generation collector copies the
 * contexts out from between other objects, wherever its threads put them.
 */
async function treeShape(shape) {
  const TOTAL = 100_000;
  const WARM = 2;
  const reps = QUICK ? 3 : 7;
  let allDone = true;
  const measure = async (garbage) => {
    const cancels = [];
    const walks = [];
    for (let r = 0; r < WARM + 2 * reps; r++) {
      await settle();
      const [root, cancel] = context.withCancel(context.background());
      const all = buildTaproot(shape, TOTAL, root, garbage);
      await quiet();
      if (r % 2 === 0) {
        const t = once(cancel);
        if (r >= WARM) cancels.push(t);
        for (const c of all) if (c.err() === null) allDone = false;
      } else {
        const t = once(() => walkTree(root));
        if (r >= WARM) walks.push(t);
        cancel();
      }
    }
    return { cancels, walks };
  };
  // Compile the builder first: trees built by unoptimized code leave each context's cancel
  // function and result array behind as garbage between the contexts.
  for (let r = 0; r < 20; r++) {
    const [root, cancel] = context.withCancel(context.background());
    buildTaproot(shape, 10_000, root, r % 2 === 1);
    cancel();
  }
  const clean = await measure(false);
  const amid = await measure(true);
  await settle();
  /**
   * The alternatives are built smaller and their time scaled to 100k: their cancel is linear
   * (one event dispatch per node) while building them is not. Node's addEventListener walks
   * the whole listener list, so 100k listeners on one signal take minutes to add, and
   * AbortSignal.any flattens its sources (a child at depth d holds d of them).
   */
  const n = 10_000;
  const a = [];
  for (let r = 0; r < 2; r++) {
    const [root, cancel] = acChild(new AbortController().signal);
    base(root);
    const all = buildShape(shape, n, root, (p) => acChild(p)[0]);
    await settle();
    a.push(once(cancel).map((ms) => (ms * TOTAL) / n));
    for (const sig of all) if (!sig.aborted) throw new Error("(a) tree not fully aborted");
  }
  await settle();
  const b = [];
  for (let r = 0; r < 2; r++) {
    const [root, cancel] = anyChild(new AbortController().signal);
    const all = buildShape(shape, n, root, (p) => anyChild(p)[0]);
    await settle();
    b.push(once(cancel).map((ms) => (ms * TOTAL) / n));
    for (const sig of all) if (!sig.aborted) throw new Error("(b) tree not fully aborted");
  }
  await settle();
  return { shape, clean, amid, a, b, n, allDone, warnings };
}

/**
 * trees runs treeShape for each shape in a child process of its own, so
 * that each starts from a fresh heap. A 100k-node walk is bound by memory,
 * and how fast memory answers depends on where the nodes landed: after this
 * process's other suites, the same walk (taproot's or plain code's) can cost
 * three or four times as much. The floor row shows that cost alongside.
 */
async function trees() {
  phase = "cancel tree";
  header("Cancel a tree of 100,000 descendants (ms per cancel(); every err() set on return)");
  const { execFileSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const label = {
    flat: "flat: 100,000 children of one root",
    "10-way": "10-way: complete 10-ary tree of 100,000 nodes",
    chain: "chain: 100 chains of depth 1000 under one root",
  };
  const results = {};
  for (const shape of ["flat", "10-way", "chain"]) {
    const args = [
      "--expose-gc",
      "--no-warnings",
      fileURLToPath(import.meta.url),
      "--tree-shape",
      shape,
    ];
    if (QUICK) args.push("--quick");
    const out = execFileSync(process.execPath, args, { encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").at(-1));
    for (const w of r.warnings) warnings.push(w);
    const t = medianOf(r.clean.cancels);
    const note = `(a), (b) ${r.n / 1000}k ×${100_000 / r.n}`;
    row("tree", label[shape], "ms", t, medianOf(r.a), medianOf(r.b), note);
    row("tree", "… floor: the same walk, only reading", "ms", medianOf(r.clean.walks), null, null);
    const amid = medianOf(r.amid.cancels);
    row("tree", "… built among garbage (contexts copied by the GC)", "ms", amid, null, null);
    row("tree", "… … floor: the same walk, only reading", "ms", medianOf(r.amid.walks), null, null);
    results[shape] = { t, amid, allDone: r.allDone };
  }
  // A single chain of depth 1000, for reference.
  {
    const tt = [];
    const ta = [];
    const tb = [];
    for (let r = 0; r < 11; r++) {
      const [root, cancel] = context.withCancel(context.background());
      buildShape("chain", 1000, root, (p) => context.withCancel(p)[0]);
      tt.push(once(cancel));
      const [aroot, acancel] = acChild(new AbortController().signal);
      buildShape("chain", 1000, aroot, (p) => acChild(p)[0]);
      ta.push(once(acancel));
      const [broot, bcancel] = anyChild(new AbortController().signal);
      buildShape("chain", 1000, broot, (p) => anyChild(p)[0]);
      tb.push(once(bcancel));
    }
    row(
      "tree",
      "reference: one chain of depth 1000",
      "ms",
      medianOf(tt),
      medianOf(ta),
      medianOf(tb),
    );
  }
  await settle();
  for (const shape of ["flat", "10-way", "chain"]) {
    const { t, amid, allDone } = results[shape];
    bar(
      `cancel 100k descendants (${shape}) ≤ 10 ms in both heap states, every err() set before cancel() returns`,
      cpu(t) <= 10 && cpu(amid) <= 10 && allDone,
      `${cell(t, "ms")} (built among garbage: ${cell(amid, "ms")})${allDone ? "" : "; some err() still null!"}`,
    );
  }
}

async function values() {
  phase = "value";
  header("value(key) found d levels up (ns/op)", "(a) chain", "(b) Map/level");
  const key = context.createKey("request");
  const others = Array.from({ length: 100 }, (_, i) => context.createKey(`k${i}`));
  const results = {};
  for (const depth of [1, 10, 100]) {
    // taproot: withValue(key) then depth-1 other values below it; look up from the leaf.
    let ctx = context.withValue(context.background(), key, "r-42");
    for (let i = 1; i < depth; i++) ctx = context.withValue(ctx, others[i], i);
    // (a) a hand-written parent-pointer chain, the same walk in plain objects.
    let node = { key, val: "r-42", parent: null };
    for (let i = 1; i < depth; i++) node = { key: others[i], val: i, parent: node };
    const chainGet = (n, k) => {
      for (let c = n; c !== null; c = c.parent) if (c.key === k) return c.val;
      return undefined;
    };
    // (b) a Map copied at every level: O(1) lookup, O(size) per derivation.
    let map = new Map([[key, "r-42"]]);
    for (let i = 1; i < depth; i++) map = new Map(map).set(others[i], i);
    const leaves = [ctx, ctx, ctx, ctx];
    const nodes = [node, node, node, node];
    const maps = [map, map, map, map];
    const t = await perOp((n) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (leaves[i & 3].value(key) === "r-42") hits++;
      return hits;
    });
    const a = await perOp((n) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (chainGet(nodes[i & 3], key) === "r-42") hits++;
      return hits;
    });
    const b = await perOp((n) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (maps[i & 3].get(key) === "r-42") hits++;
      return hits;
    });
    row("value", `value() at depth ${depth}`, "ns", t, a, b);
    results[depth] = t;
  }
  // Cancelable contexts in between: the walk meets two kinds of node.
  {
    let ctx = context.withValue(context.background(), key, "r-42");
    const cancels = [];
    for (let i = 1; i < 100; i++) {
      if (i % 2) {
        const [c, f] = context.withCancel(ctx);
        cancels.push(f);
        ctx = c;
      } else ctx = context.withValue(ctx, others[i], i);
    }
    const leaves = [ctx, ctx, ctx, ctx];
    const t = await perOp((n) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (leaves[i & 3].value(key) === "r-42") hits++;
      return hits;
    });
    const miss = context.createKey("missing");
    const tMiss = await perOp((n) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (leaves[i & 3].value(miss) === undefined) hits++;
      return hits;
    });
    row("value", "value() at depth 100, every other level withCancel", "ns", t, null, null);
    row("value", "… a key nobody set (walks to background)", "ns", tMiss, null, null);
    for (const f of cancels) f();
  }
  bar("`value()` at depth 100 ≤ 200 ns", cpu(results[100]) <= 200, cell(results[100], "ns"));
}

async function heap() {
  phase = "heap";
  header("Heap (bytes, after gc())");
  // 1M cycles for withCancel; the variants that create an AbortController (30 µs or so each to
  // abort on Node 20) or a timer run 20k, which is plenty to see bytes per cycle.
  const CYCLES = QUICK ? 200_000 : 1_000_000;
  const SLOW = QUICK ? 5_000 : 20_000;

  async function retainedPerCycle(make, cycles = SLOW) {
    const { parent, cycle, done } = make();
    // Warm up so compiled code and feedback are not counted as retained.
    for (let i = 0; i < 20_000; i++) cycle(parent);
    await settle();
    const h0 = heapUsed();
    for (let i = 0; i < cycles; i++) cycle(parent);
    await settle();
    const h1 = heapUsed();
    done();
    return (h1 - h0) / cycles;
  }

  const tRet = await retainedPerCycle(() => {
    const [parent, cancel] = context.withCancel(context.background());
    return {
      parent,
      cycle: (p) => context.withCancel(p)[1](),
      done: cancel,
    };
  }, CYCLES);
  const tRetS = await retainedPerCycle(() => {
    const [parent, cancel] = context.withCancel(context.background());
    void parent.signal;
    return {
      parent,
      cycle: (p) => {
        const [c, f] = context.withCancel(p);
        void c.signal;
        f();
      },
      done: cancel,
    };
  });
  const tRetT = await retainedPerCycle(() => {
    const [parent, cancel] = context.withCancel(context.background());
    return { parent, cycle: (p) => context.withTimeout(p, HOUR)[1](), done: cancel };
  });
  const aRet = await retainedPerCycle(() => {
    const ac = new AbortController();
    return { parent: ac.signal, cycle: (p) => acChild(p)[1](), done: () => ac.abort() };
  });
  const bRet = await retainedPerCycle(() => {
    const ac = new AbortController();
    return { parent: ac.signal, cycle: (p) => anyChild(p)[1](), done: () => ac.abort() };
  });
  const label = "retained per create+cancel cycle";
  const k = (n) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);
  row(
    "heap",
    `${label}, .signal untouched`,
    "B",
    tRet,
    aRet,
    bRet,
    `taproot ${k(CYCLES)} cycles, (a)/(b) ${k(SLOW)}`,
  );
  row("heap", `${label}, .signal touched`, "B", tRetS, aRet, bRet, `${k(SLOW)} cycles`);
  row("heap", `${label}, withTimeout(1h)`, "B", tRetT, null, null, `${k(SLOW)} cycles`);
  bar(
    `retained heap after ${k(CYCLES)} create/cancel cycles under one parent < 1 B/cycle`,
    tRet < 1,
    `${fmt(tRet, "B")} (${k(CYCLES)} cycles); over ${k(SLOW)} cycles, which resolve ±1 B at best: ` +
      `${fmt(tRetS, "B")} signal touched, ${fmt(tRetT, "B")} withTimeout, AbortSignal.any ${fmt(bRet, "B")}`,
  );

  // 100k live children for taproot without signals; 10k where an AbortController is made (each
  // costs tens of µs to abort on Node 20) and for hand-linked ones, whose addEventListener walks
  // the parent's whole listener list (quadratic: 100k listeners on one signal take minutes).
  const LIVE = 100_000;
  async function perLive(make, live = 10_000) {
    const ctxs = new Array(live).fill(null);
    const fns = new Array(live).fill(null);
    const { parent, child, done } = make();
    // Warm up the code paths, then measure with the holders already allocated.
    for (let i = 0; i < 1000; i++) {
      const [c, f] = child(parent);
      ctxs[i] = c;
      fns[i] = f;
    }
    for (let i = 0; i < 1000; i++) fns[i]();
    ctxs.fill(null);
    fns.fill(null);
    await settle();
    const h0 = heapUsed();
    for (let i = 0; i < live; i++) {
      const [c, f] = child(parent);
      ctxs[i] = c;
      fns[i] = f;
    }
    await settle();
    const h1 = heapUsed();
    for (const f of fns) f();
    done();
    return (h1 - h0) / live;
  }
  const tLive = await perLive(() => {
    const [parent, cancel] = context.withCancel(context.background());
    return { parent, child: (p) => context.withCancel(p), done: cancel };
  }, LIVE);
  const tLiveS = await perLive(() => {
    const [parent, cancel] = context.withCancel(context.background());
    return {
      parent,
      child: (p) => {
        const r = context.withCancel(p);
        void r[0].signal;
        return r;
      },
      done: cancel,
    };
  });
  const tLiveT = await perLive(() => {
    const [parent, cancel] = context.withCancel(context.background());
    return { parent, child: (p) => context.withTimeout(p, HOUR), done: cancel };
  }, LIVE);
  const aLive = await perLive(() => {
    const ac = new AbortController();
    return { parent: base(ac.signal), child: (p) => acChild(p), done: () => ac.abort() };
  });
  const bLive = await perLive(() => {
    const ac = new AbortController();
    return { parent: ac.signal, child: (p) => anyChild(p), done: () => ac.abort() };
  });
  row("heap", "per live child + its cancel function, .signal untouched", "B", tLive, aLive, bLive);
  row("heap", "per live child + its cancel function, .signal touched", "B", tLiveS, aLive, bLive);
  row("heap", "per live withTimeout(1h) child + cancel (timer included)", "B", tLiveT, null, null);
  bar(
    "a live child with its cancel function (signal untouched) ≤ 200 B",
    tLive <= 200,
    `${fmt(tLive, "B")} (AbortController-based: ${fmt(aLive, "B")}, AbortSignal.any: ${fmt(bLive, "B")})`,
  );
}

async function listeners() {
  phase = "listeners";
  // Long-lived outside signal, children that come and go: nothing may accumulate.
  const outside = new AbortController();
  const [parent, cancelParent] = context.withCancel(context.background());
  void parent.signal;
  const live = [];
  for (let i = 0; i < 1000; i++) live.push(context.withCancel(parent));
  for (const [c] of live) void c.signal;
  for (let i = 0; i < 100_000; i++) context.withSignal(parent, outside.signal)[1]();
  // Many live children of one outside signal at once.
  const followers = [];
  for (let i = 0; i < 1000; i++) followers.push(context.withSignal(parent, outside.signal));
  const held = getEventListeners(outside.signal, "abort").length;
  for (const [, f] of followers) f();
  const left = getEventListeners(outside.signal, "abort").length;
  const onParent = getEventListeners(parent.signal, "abort").length;
  bar(
    "no listener accumulates on a long-lived signal",
    held <= 1 && left === 0 && onParent === 0,
    `1000 live withSignal children hold ${held} listener(s) on the outside signal, ${left} after they end; ` +
      `${onParent} on a parent's signal with 1000 live children whose signals were touched`,
  );
  for (let i = 0; i < 100_000; i++) context.withCancel(parent)[1]();
  for (const [, f] of live) f();
  cancelParent();
  outside.abort();
  await settle();
}

async function hooksCost() {
  phase = "hooks";
  header("Debug hooks (ns/op, withCancel + cancel, .signal untouched)", "no-op hooks", "");
  const [parent, cancelParent] = context.withCancel(context.background());
  const withCancel = context.withCancel;
  const loop = (n) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withCancel(parent);
      cancel();
    }
    return n;
  };
  const off1 = await perOp(loop);
  const noop = { created() {}, childLimit: Infinity, tooManyChildren() {} };
  const old = setDebugHooks(noop);
  const on = await perOp(loop);
  setDebugHooks(old);
  const off2 = await perOp(loop);
  cancelParent();
  const off = off1.cpu <= off2.cpu ? off1 : off2;
  row(
    "hooks",
    "hooks off (null) vs no-op hooks installed",
    "ns",
    off,
    on,
    null,
    `off: ${cell(off1, "ns")} before, ${cell(off2, "ns")} after`,
  );
}

async function size() {
  phase = "size";
  const bundle = async (contents) => {
    const out = await build({
      stdin: { contents, resolveDir: new URL("../dist/", import.meta.url).pathname, loader: "js" },
      bundle: true,
      minify: true,
      format: "esm",
      write: false,
      platform: "neutral",
      target: "es2022",
    });
    const code = out.outputFiles[0].contents;
    return { min: code.length, gz: gzipSync(code, { level: 9 }).length };
  };
  const all = await bundle('export * from "./index.js";');
  const small = await bundle('export { background, withCancel } from "./index.js";');
  console.log("\n## Bundle (esbuild --bundle --minify, gzip -9)");
  console.log(`taproot (every export of the core):  ${all.min} B minified, ${all.gz} B gzipped`);
  console.log(
    `background + withCancel only:         ${small.min} B minified, ${small.gz} B gzipped`,
  );
  rows.push({
    group: "size",
    name: "core bundle",
    unit: "B",
    t: all.gz,
    a: all.min,
    b: null,
    note: "",
  });
  rows.push({
    group: "size",
    name: "background+withCancel",
    unit: "B",
    t: small.gz,
    a: small.min,
    b: null,
    note: "",
  });
  bar(
    "core bundled and minified ≤ 4 kB gzipped (4,000 B)",
    all.gz <= 4000,
    `${all.gz} B gzipped (${all.min} B minified)${all.gz > 4000 && all.gz <= 4096 ? "; within 4 KiB (4,096 B)" : ""}`,
  );
}

// ---------------------------------------------------------------------------

/**
 * exercise uses every kind of context and every lazy part once, as any program does somewhere,
 * before anything is timed. V8 specializes optimized code on what it has seen so far (a field
 * that has only ever held null, say), and code measured before the first `.signal` or `done()`
 * can be faster than it is in real use: an earlier engine measured 75–85 ns for create+cancel
 * first thing, and 100–140 ns once `.signal` had been touched elsewhere.
 */
async function exercise() {
  const [root, cancelRoot] = context.withCancel(context.background());
  const outside = new AbortController();
  // Keys made by createKey, as the README recommends: a lookup compares them by reference. A
  // program that also looks up strings makes V8 compare every level as a possible string
  // (value() at depth 100 then costs 3–5× as much).
  const k = context.createKey("k");
  for (let i = 0; i < 1000; i++) {
    const [a, cancelA] = context.withCancelCause(root);
    const [b, cancelB] = context.withTimeout(a, 3_600_000);
    const [c, cancelC] = context.withSignal(context.withValue(b, k, i), outside.signal);
    const d = context.withoutCancel(c);
    sink ^= (c.signal.aborted ? 1 : 0) ^ (d.value(k) === i ? 0 : 1);
    void a.done();
    context.afterFunc(c, () => {});
    if (i % 2) cancelA(new Error("done"));
    cancelC();
    cancelB();
    cancelA();
  }
  cancelRoot();
  await settle();
}

if (argv.includes("--tree-shape")) {
  await exercise();
  phase = "cancel tree";
  const r = await treeShape(argv[argv.indexOf("--tree-shape") + 1]);
  console.log(JSON.stringify(r));
  process.exit(0);
}

await exercise();
const started = performance.now();
console.log(
  `taproot bench: node ${process.version}, ${process.platform}/${process.arch}${QUICK ? ", --quick" : ""}`,
);
console.log(
  "(a) hand-linked AbortController, (b) AbortSignal.any([parent.signal, own.signal]); ratios are alternative / taproot",
);

const suites = {
  rootsAndErr,
  createCancel,
  timeouts,
  trees,
  values,
  heap,
  listeners,
  hooksCost,
  size,
};
for (const [name, suite] of Object.entries(suites)) {
  if (ONLY !== null && !ONLY.includes(name)) continue;
  const t0 = performance.now();
  await suite();
  console.log(`(${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

phase = "end";
await settle();
const ours = warnings.filter((w) => w.name === "MaxListenersExceededWarning" && w.ours);
console.log("\n## Warnings seen (phase: name)");
if (warnings.length === 0) console.log("none");
for (const w of warnings) {
  console.log(
    `${w.phase}: ${w.ours ? "taproot" : "baseline"}: ${w.name}: ${w.message.slice(0, 100)}`,
  );
}
bar(
  "no MaxListenersExceededWarning from taproot, ever",
  ours.length === 0,
  `${ours.length} from taproot code; ${warnings.filter((w) => w.name === "MaxListenersExceededWarning").length} in total (the rest from the AbortController baselines)`,
);

console.log("\n## Bars of issue 2");
for (const b of bars) console.log(`${b.pass ? "PASS" : "FAIL"}  ${b.bar}: ${b.figure}`);
console.log(`\n(total ${((performance.now() - started) / 1000).toFixed(1)} s; sink ${sink & 1})`);

if (JSON_OUT) {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(
    JSON_OUT,
    JSON.stringify(
      { node: process.version, date: new Date().toISOString(), rows, bars, warnings },
      null,
      2,
    ),
  );
}
if (bars.some((b) => !b.pass)) process.exitCode = 1;
