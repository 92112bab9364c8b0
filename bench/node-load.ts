/**
 * Load test of taproot/node (`npm run bench:node`).
 *
 * 1. Churn: 10,000 requests through serve() on loopback, 100 at a time, of
 *    which a random third disconnect early. Checks: no unexpected error,
 *    every early disconnect seen as a canceled context, zero live request
 *    contexts afterwards, heap back to its baseline.
 * 2. Overhead: server CPU per request of a trivial handler with node:http
 *    alone, with requestContext(req, res, { timeout: 5000 }) on node:http,
 *    with serve() and with serve({ timeout: 5000 }). Each server runs in a
 *    child process, and is loaded in many short slices (SLICE_MS, default
 *    100 ms) by keep-alive connections that stay open
 *    (bench/keep-alive-load.ts). Each contender has a node:http server of
 *    its own as baseline, loaded in the slice beside each of its slices; the
 *    contender slice is divided by it. GENERATIONS (default 10) times, every
 *    server is started anew and run for ROUNDS (default 20) slices. The
 *    median over generations of each generation's median ratio must be at
 *    most ×1.03; the generations' spread and the interquartile range of all
 *    ratios are printed beside it, and an A/A pair (node:http against
 *    node:http) shows what the method reads where there is nothing to find.
 *    Which server of a pair starts and warms up first alternates with the
 *    generation. The user-mode part of the CPU time is divided alike and
 *    printed beside it (the kernel's part is nearly half, and the same work
 *    whatever the layer does); the bar is judged on the whole.
 *    Then each warm server is profiled under the same load, for the share
 *    of its CPU in taproot.
 *
 * Prints a table and writes it to bench/results/node-load.md. MODES (e.g.
 * "serve") picks contenders; "floor" is node:http with one property and
 * one close listener per request, what any request layer needs, and
 * "property" the property alone. Each generation's medians are printed as
 * it ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { format } from "prettier";
import { KeepAliveLoad } from "./keep-alive-load.js";
import { ask as askChild, median, quantile, stopChild } from "./paired-rounds.js";
import { profileShare } from "./profile-share.js";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { cause, sleep } from "../src/index.js";
import { liveChildCount } from "../src/introspect.js";
import { ClientDisconnectedError, serve } from "../src/node/index.js";

// `tsx bench/node-load.ts` cannot pass --expose-gc; this turns it on late.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const TOTAL = 10_000;
const CONCURRENCY = 100;

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

/** churn runs `count` requests, `CONCURRENCY` at a time; a random third hang up early. */
async function churn(port: number, count: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  let ok = 0;
  let aborted = 0;
  let errors = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const leave = Math.random() < 1 / 3;
      const req = http.get({ host: "127.0.0.1", port, path: "/", agent }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) ok++;
          else errors++;
          resolve();
        });
      });
      req.on("error", () => {
        if (!leave) errors++;
        resolve();
      });
      if (leave) {
        setTimeout(
          () => {
            aborted++;
            req.destroy();
          },
          1 + Math.random() * 10,
        );
      }
    });
  const lanes = Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  });
  await Promise.all(lanes);
  agent.destroy();
  return { ok, aborted, errors };
}

async function loadTest() {
  let disconnects = 0;
  let handlerErrors = 0;
  const app = serve(
    async (ctx, _req, res) => {
      try {
        await sleep(ctx, 20); // "database work"
        res.end("ok");
      } catch (err) {
        if (cause(ctx) instanceof ClientDisconnectedError) disconnects++;
        throw err;
      }
    },
    { onError: () => handlerErrors++ },
  );
  const { port } = await app.listen(0, "127.0.0.1");
  await churn(port, 1_000); // warm up: JIT, sockets, lazy allocations
  disconnects = 0;
  const baseline = await heapAfterGc();
  const t0 = performance.now();
  const r = await churn(port, TOTAL);
  const seconds = (performance.now() - t0) / 1_000;
  await new Promise((res) => setTimeout(res, 100)); // let the last closes land
  const live = liveChildCount(app.context);
  const inflight = app.inflight().length;
  const after = await heapAfterGc();
  const firstRunDisconnects = disconnects;
  // A second run tells one-time growth (JIT code, pools) from a leak, which
  // would grow again by as much.
  await churn(port, TOTAL);
  await new Promise((res) => setTimeout(res, 100));
  const again = await heapAfterGc();
  await app.shutdown();
  return {
    ...r,
    seconds,
    disconnects: firstRunDisconnects,
    handlerErrors,
    live,
    inflight,
    baseline,
    after,
    again,
  };
}

/**
 * Server is one contender's server process, started once and loaded in
 * many short rounds by its own keep-alive connections.
 */
interface Server {
  mode: string;
  child: ChildProcess;
  load: KeepAliveLoad;
}

/** ask sends `msg` to a server and resolves with its answer; it rejects if the server exits first. */
function ask<T>(server: Server, msg: unknown): Promise<T> {
  return askChild<T>(server.child, `server ${server.mode}`, msg);
}

async function start(mode: string): Promise<Server> {
  // The same arguments for every mode (see node-load-server.js): the mode goes over IPC.
  const args = [...SERVER_FLAGS, fileURLToPath(new URL("./node-load-server.js", import.meta.url))];
  const [command, argv] =
    SERVER_CPUS === undefined
      ? [process.execPath, args]
      : ["taskset", ["-c", SERVER_CPUS, process.execPath, ...args]];
  const child = spawn(command, argv, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await askChild<number>(child, `server ${mode}`, mode);
  const load = new KeepAliveLoad(port, CONNECTIONS);
  await load.open();
  return { mode, child, load };
}

/** Slice is one round of one server: its CPU time per request and its throughput. */
interface Slice {
  cpuPerRequest: number;
  /** The user-mode part: without the kernel's share (loopback TCP, epoll), which is nearly half of it. */
  userPerRequest: number;
  rps: number;
  errors: number;
}

/** slice loads one server for `ms`, between a mark and a report of its CPU time. */
async function slice(server: Server, ms: number): Promise<Slice> {
  await ask(server, "mark");
  const r = await server.load.run(ms);
  const { cpuMicros, userMicros, served } = await ask<{
    cpuMicros: number;
    userMicros: number;
    served: number;
  }>(server, "report");
  return {
    cpuPerRequest: cpuMicros / served,
    userPerRequest: userMicros / served,
    rps: r.responses / r.seconds,
    errors: r.errors,
  };
}

/**
 * layerShare profiles a warm server under load for `ms` (V8's sampling
 * profiler, started in the server's own process after the rounds) and
 * returns the share of its busy CPU time (all but idle) spent in taproot
 * (frames of dist/) and in what taproot called in Node, leaving out the
 * handler's own work (frames of node-load-server.js and below), as
 * profileShare() reads it: the cost of the request layer, read from samples,
 * which a busy machine slows down but does not skew. GC is counted apart: it
 * belongs to no frame.
 */
async function layerShare(server: Server, ms: number): Promise<{ layer: number; gc: number }> {
  const dir = mkdtempSync(join(tmpdir(), "taproot-prof-"));
  try {
    const file = join(dir, `${server.mode}.cpuprofile`);
    await ask(server, "profile-start");
    await server.load.run(ms);
    await ask(server, { "profile-stop": file });
    const share = profileShare(file);
    return { layer: share.taproot, gc: share.gc };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
const kb = (n: number) => `${n >= 0 ? "+" : ""}${(n / 1024).toFixed(0)} KB`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x * 100).toFixed(1)}%`;

const loadAtStart = loadavg()[0]!;
console.log(`churn: ${TOTAL} requests, ${CONCURRENCY} at a time, a random third hang up early…`);
const load = await loadTest();
const heapDelta = load.after - load.baseline;

const CONNECTIONS = 50;
const SERVER_CPUS = process.env.SERVER_CPUS;
const SERVER_FLAGS = (process.env.SERVER_FLAGS ?? "").split(" ").filter((f) => f !== "");
/** Fresh sets of server processes; each contender and its baseline start anew in each. */
const GENERATIONS = Number(process.env.GENERATIONS ?? 10);
/** Rounds per generation: one slice of each contender and one of its baseline per round. */
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const SLICE_MS = Number(process.env.SLICE_MS ?? 100);
const WARM_MS = Number(process.env.WARM_MS ?? 600);
const PROFILE_MS = Number(process.env.PROFILE_MS ?? 2_000);
/** The contenders; "plain-again" is node:http alone in another process, judged like the others but held to no bar: what the method reads where there is nothing to find. */
const contenders = (
  process.env.MODES ?? "plain-again,requestContext+timeout,serve,serve+timeout"
).split(",");
/** A mode `before:<mode>` is <mode> on the build TAPROOT_BENCH_BEFORE names (bench/node-load-server.js), shown beside the current one and held to no bar. */
const judged = contenders.filter((m) => m !== "plain-again" && !m.startsWith("before:"));
const modes = ["plain", ...contenders];

/**
 * Every contender gets a node:http server of its own as its baseline, so
 * that the two are loaded equally often and sit idle equally long between
 * slices: a server loaded after a long pause costs more per request at
 * first (cold caches, a young generation sized for the pause), and a
 * baseline shared by all contenders, loaded every other slice, would
 * always be the warmer one.
 */
type Pairs = Map<string, { base: Server; contender: Server }>;

/**
 * startGeneration starts each contender and its baseline, and warms them up
 * (JIT, pools, lazy allocations), one server at a time. Which of the two is
 * started, connected and warmed first alternates with the generation: with
 * the baseline always first, an A/A pair over 40 generations read the
 * second server +1.0 % in CPU per request and +1.9 % in throughput.
 */
async function startGeneration(generation: number): Promise<Pairs> {
  const baseFirst = generation % 2 === 0;
  const started = await Promise.all(
    contenders.map(async (m) => {
      const [first, second] = baseFirst ? ["plain", m] : [m, "plain"];
      const a = await start(first);
      const b = await start(second);
      return [m, baseFirst ? { base: a, contender: b } : { base: b, contender: a }] as const;
    }),
  );
  const pairs: Pairs = new Map(started);
  for (const { base, contender } of pairs.values()) {
    for (const server of baseFirst ? [base, contender] : [contender, base]) {
      await slice(server, WARM_MS);
    }
  }
  return pairs;
}

async function stopGeneration(pairs: Pairs): Promise<void> {
  for (const { base, contender } of pairs.values()) {
    for (const s of [base, contender]) {
      s.load.close();
      await stopChild(s.child);
    }
  }
}

/**
 * The rounds of one generation: each contender in turn (their order
 * reversed every other round), one slice of it and one of its baseline
 * right next to it (the baseline first in even rounds, second in odd ones).
 * Each contender slice is divided by the baseline slice beside it: one
 * paired ratio per round.
 *
 * Why generations: slices of one pair of processes agree closely (a quiet
 * machine gives an interquartile range of ±1 %), but two pairs started
 * alike read medians up to several percent apart, and keep them for their
 * whole life (where the JIT's feedback led it, where the heap and the code
 * landed). One pair per contender measures its processes as much as the
 * code. So every generation starts every server anew, and the overhead is
 * the median over generations of each generation's median ratio.
 */
console.log(
  `throughput: ${GENERATIONS} generations of fresh servers, ${ROUNDS} rounds of ${SLICE_MS} ms per contender each, every slice beside a node:http slice…`,
);
const plainSlices: Slice[] = [];
const slices: Record<string, Slice[]> = Object.fromEntries(contenders.map((m) => [m, []]));
const paired: Record<string, number[]> = Object.fromEntries(contenders.map((m) => [m, []]));
const rpsPaired: Record<string, number[]> = Object.fromEntries(contenders.map((m) => [m, []]));
const userPaired: Record<string, number[]> = Object.fromEntries(contenders.map((m) => [m, []]));
/** Each generation's median paired ratio, per contender: of CPU time, and of its user part alone. */
const generationMedians: Record<string, number[]> = Object.fromEntries(
  contenders.map((m) => [m, []]),
);
const userGenerationMedians: Record<string, number[]> = Object.fromEntries(
  contenders.map((m) => [m, []]),
);
const t0 = performance.now();
let pairs: Pairs | undefined;
for (let generation = 0; generation < GENERATIONS; generation++) {
  pairs = await startGeneration(generation);
  for (let round = 0; round < ROUNDS; round++) {
    for (const m of round % 2 === 0 ? contenders : [...contenders].reverse()) {
      const { base, contender } = pairs.get(m)!;
      let p: Slice;
      let s: Slice;
      if (round % 2 === 0) {
        p = await slice(base, SLICE_MS);
        s = await slice(contender, SLICE_MS);
      } else {
        s = await slice(contender, SLICE_MS);
        p = await slice(base, SLICE_MS);
      }
      plainSlices.push(p);
      slices[m]!.push(s);
      paired[m]!.push(s.cpuPerRequest / p.cpuPerRequest);
      rpsPaired[m]!.push(s.rps / p.rps);
      userPaired[m]!.push(s.userPerRequest / p.userPerRequest);
    }
  }
  // This generation's ratios are the last ROUNDS of each contender's.
  for (const m of contenders) {
    generationMedians[m]!.push(median(paired[m]!.slice(-ROUNDS)));
    userGenerationMedians[m]!.push(median(userPaired[m]!.slice(-ROUNDS)));
  }
  console.log(
    `  generation ${generation + 1}: ${contenders.map((m) => `${m} ${signed(generationMedians[m]!.at(-1)! - 1)}`).join(", ")}`,
  );
  // The last generation stays up for the profiles.
  if (generation < GENERATIONS - 1) await stopGeneration(pairs);
}
const roundsSeconds = (performance.now() - t0) / 1000;

console.log(`profiles: ${PROFILE_MS} ms per server under V8's sampling profiler…`);
const last = pairs!;
const shares: Record<string, { layer: number; gc: number }> = {};
shares.plain = await layerShare(last.get(contenders[0]!)!.base, PROFILE_MS);
for (const m of contenders) shares[m] = await layerShare(last.get(m)!.contender, PROFILE_MS);
await stopGeneration(last);

const all = [...plainSlices, ...contenders.flatMap((m) => slices[m]!)];
const acErrors = all.reduce((n, s) => n + s.errors, 0);
/** overhead: extra server CPU per request, the median over generations of their median paired ratio, minus one. */
const overhead = (m: string) => median(generationMedians[m]!) - 1;
const iqr = (m: string) =>
  `${signed(quantile(paired[m]!, 0.25) - 1)} … ${signed(quantile(paired[m]!, 0.75) - 1)}`;
const generationRange = (m: string) =>
  `${signed(Math.min(...generationMedians[m]!) - 1)} … ${signed(Math.max(...generationMedians[m]!) - 1)}`;
const nameOf = (m: string): string =>
  m.startsWith("before:")
    ? `${nameOf(m.slice("before:".length))}, earlier build`
    : m === "plain"
      ? "node:http alone"
      : m === "plain-again"
        ? "node:http alone again (the method's own error)"
        : m === "floor"
          ? "node:http + one property and one close listener per request (any layer's floor)"
          : m === "property"
            ? "node:http + one property per request"
            : m === "serve"
              ? "serve()"
              : m === "serve+timeout"
                ? "serve() with timeout: 5 s"
                : "node:http + requestContext(req, res, { timeout: 5 s })";
const BAR = 0.03;

const lines = [
  `# taproot/node load test`,
  ``,
  `Node ${process.version}, ${process.platform}/${process.arch}, loopback. Command: \`npm run bench:node\`.`,
  ``,
  `## Churn: ${TOTAL.toLocaleString("en")} requests, a random third disconnecting early`,
  ``,
  `| measure | value |`,
  `| --- | --- |`,
  `| completed with 200 | ${load.ok} |`,
  `| disconnected early by the client | ${load.aborted} |`,
  `| reached a handler, then disconnected (ClientDisconnectedError) | ${load.disconnects} |`,
  `| unexpected errors (client or handler) | ${load.errors + load.handlerErrors} |`,
  `| live request contexts afterwards | ${load.live} |`,
  `| requests in flight afterwards | ${load.inflight} |`,
  `| heap after GC: baseline → after | ${mb(load.baseline)} → ${mb(load.after)} (${kb(heapDelta)}) |`,
  `| heap after GC after another ${TOTAL.toLocaleString("en")} | ${mb(load.again)} (${kb(load.again - load.after)}) |`,
  `| duration | ${load.seconds.toFixed(2)} s |`,
  ``,
  `## Server CPU per request of a trivial handler (${CONNECTIONS} keep-alive connections, ${GENERATIONS} generations of fresh servers × ${ROUNDS} rounds of ${SLICE_MS} ms per contender, each slice beside one of its own node:http baseline)`,
  ``,
  `| server | req/s | server CPU per request | overhead (CPU, median of the generations' medians) | generations' medians, lowest … highest | interquartile range of all paired ratios | user-mode CPU alone (median of the generations' medians) | overhead (req/s, paired median) | layer in the profile | GC in the profile |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...modes.map((m) => {
    const own = m === "plain" ? plainSlices : slices[m]!;
    const rps = Math.round(median(own.map((s) => s.rps))).toLocaleString("en");
    const cpu = median(own.map((s) => s.cpuPerRequest)).toFixed(2);
    const cells =
      m === "plain"
        ? ["—", "—", "—", "—", "—", "—"]
        : [
            signed(overhead(m)),
            generationRange(m),
            iqr(m),
            signed(median(userGenerationMedians[m]!) - 1),
            signed(1 - median(rpsPaired[m]!)),
            pct(shares[m]!.layer),
          ];
    return `| ${nameOf(m)} | ${rps} | ${cpu} µs | ${cells.join(" | ")} | ${pct(shares[m]!.gc)} |`;
  }),
  ``,
  `Each server runs in its own process (plain node on dist/). A generation starts every server anew`,
  `(each contender and a node:http baseline of its own), warms each up for ${WARM_MS} ms, runs its rounds`,
  `and stops them; slices of one pair of processes agree closely, but two pairs started alike can`,
  `read medians several percent apart for their whole life, so the processes themselves are sampled`,
  `too. The load generator (bench/keep-alive-load.ts) keeps ${CONNECTIONS} connections open to each server, one`,
  `request in flight per connection, and loads one server at a time. A slice is ${SLICE_MS} ms of load between`,
  `a mark and a report of the server's CPU time (user + system) and requests served. A round loads each`,
  `contender and its baseline in adjacent slices (baseline first in even rounds, second in odd ones; the`,
  `contenders' order reversed every other round), and each contender slice is divided by the baseline`,
  `slice beside it. The overhead is the median over the ${GENERATIONS} generations of each one's median`,
  `ratio, the bar ×${(1 + BAR).toFixed(2)} (not applied to node:http alone again, which shows what the method reads`,
  `where there is nothing to find). The rounds took ${roundsSeconds.toFixed(0)} s; errors and non-200 answers:`,
  `${acErrors}. ${cpus().length} CPUs, load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end.`,
  ``,
  `The user-mode column divides the user part of each slice's CPU time alike: the kernel's part (loopback`,
  `TCP, epoll), nearly half of a request's CPU time here, is the same work whatever the layer does, and`,
  `moves with the machine. The bar is judged on the whole CPU time.`,
  ``,
  `The profile columns come from ${PROFILE_MS} ms of the same load per server under V8's sampling profiler,`,
  `started in the warm server after the rounds: the request layer is every busy sample whose`,
  `nearest frame of interest is taproot's (dist/) rather than the handler's, i.e. taproot's`,
  `functions and the Node functions they call (listeners added, timers). Samples say where the`,
  `CPU went whatever else runs on the machine.`,
  ``,
];
const table = lines.join("\n");
console.log(`\n${table}`);
// Formatted as `npm run format:check` expects, so a fresh run keeps CI green.
writeFileSync(
  fileURLToPath(new URL("./results/node-load.md", import.meta.url)),
  await format(table, { parser: "markdown", printWidth: 100 }),
);

const failures: string[] = [];
if (load.errors + load.handlerErrors > 0) failures.push("unexpected errors");
if (load.live !== 0 || load.inflight !== 0) failures.push("request contexts left alive");
if (heapDelta > 2 * 1024 * 1024) failures.push(`heap grew by ${mb(heapDelta)}`);
if (load.again - load.after > 512 * 1024) {
  failures.push(`heap grew again by ${mb(load.again - load.after)} on a second run`);
}
if (acErrors > 0) failures.push(`${acErrors} errors or non-200 answers under load`);
for (const m of judged) {
  if (overhead(m) > BAR) {
    failures.push(`${m} overhead ${signed(overhead(m))} > +${(BAR * 100).toFixed(0)}%`);
  }
}
if (failures.length > 0) {
  console.error(`FAIL: ${failures.join("; ")}`);
  process.exitCode = 1;
}
