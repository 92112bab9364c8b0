/**
 * Instructions per request of the request layer (`npm run bench:instructions`):
 * a count, not a time, which the noise of a shared machine does not move.
 *
 * Each server of bench/node-load-server.js (node:http alone, requestContext
 * with a timeout, serve(), serve() with a timeout) runs under valgrind's
 * callgrind, with V8's perf map on so that its compiled JavaScript has names.
 * Ten keep-alive connections load it (bench/keep-alive-load.ts) for WARM_MS
 * (default 150 s; valgrind runs it some fifty times slower), then its counters
 * are zeroed, RUN_MS (default 40 s) of the same load runs, and they are
 * dumped. The warm-up is long because the JIT is slow to settle under
 * valgrind: after 20 s, node:http alone still counted 127,556 instructions
 * per request, most of them the compiler's; after 150 s, 48,700–52,600. MODES may also name the GET servers of
 * bench/frameworks-load-server.js (`fastify`, `fastify+taproot`, `hono`, …),
 * each then compared with the first mode of MODES. Printed per request:
 * - the whole process's instructions (every thread: the JIT's and the GC's
 *   too), which moves by a few percent from run to run with when the GC and
 *   the compiler happen to run;
 * - the instructions in taproot's own compiled functions (dist/), which do
 *   not, as a share of the whole of node:http alone: the request layer's own
 *   work, without what it makes Node do (a listener added, a close emitted)
 *   or what it costs in caches, which only the CPU-time bench
 *   (bench/node-load.ts) sees.
 *
 * Needs valgrind (Debian's package `valgrind`). Writes
 * bench/results/instructions.md. MODES picks servers; DIFF=30 adds, for each
 * mode after the first, the 30 functions whose own count differs most from
 * the first mode's (taproot's or Node's); CACHE=1 has callgrind simulate the
 * caches and adds their misses per request (slower still); KEEP=1 keeps the
 * dumps for callgrind_annotate; PERF_MAP=0 leaves V8's perf map off (see
 * PERF_MAP below).
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { format } from "prettier";
import { KeepAliveLoad } from "./keep-alive-load.js";
import { ask, requireCommand, serverScriptOf } from "./paired-rounds.js";

const MODES = (process.env.MODES ?? "plain,requestContext+timeout,serve,serve+timeout").split(",");
const WARM_MS = Number(process.env.WARM_MS ?? 150_000);
const RUN_MS = Number(process.env.RUN_MS ?? 40_000);
const CONNECTIONS = 10;
/** CACHE=1 has callgrind simulate the caches too: misses per request beside the instructions. */
const CACHE = process.env.CACHE === "1";
/**
 * PERF_MAP=0 runs node without V8's perf map: compiled JavaScript has no
 * names, so taproot's own count reads 0, but the process runs as the CPU
 * benches run it. With V8's code logging on, a Fastify process with taproot
 * builds some object literals in the runtime that it otherwise does not
 * (BENCHMARKS.md, 8 December).
 */
const PERF_MAP = process.env.PERF_MAP !== "0";
const dist = pathToFileURL(fileURLToPath(new URL("../dist/", import.meta.url))).href;

requireCommand("bench/instructions.ts", "valgrind", "valgrind", "count instructions");

/**
 * One function's own instructions (not its callees'), by name, from a
 * callgrind dump, and the whole dump's total of each event it counted
 * (with CACHE=1 also the simulated cache's misses: D1mr, DLmr, …).
 */
function selfCosts(file: string): { costs: Map<string, number>; totals: Map<string, number> } {
  const names = new Map<string, string>();
  const costs = new Map<string, number>();
  const totals = new Map<string, number>();
  let events: string[] = ["Ir"];
  let fn = "";
  // The line after `calls=` is the call's inclusive cost: the callee's, not this function's.
  let callCost = false;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.startsWith("events:")) {
      events = line.slice("events:".length).trim().split(/\s+/);
      continue;
    }
    const named = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (named !== null) {
      if (named[2] !== undefined) names.set(named[1]!, named[2]);
      if (line.startsWith("fn=")) {
        fn = names.get(named[1]!) ?? named[1]!;
        callCost = false;
      }
      continue;
    }
    if (line.startsWith("calls=")) {
      callCost = true;
      continue;
    }
    if (!/^[0-9+\-*]/.test(line)) continue;
    const fields = line.split(" ");
    if (fields.length < 2) continue;
    if (callCost) {
      callCost = false;
      continue;
    }
    // One position (the line), then one figure per event, trailing zeros left out.
    costs.set(fn, (costs.get(fn) ?? 0) + Number(fields[1]));
    for (let i = 0; i < events.length && i + 1 < fields.length; i++) {
      totals.set(events[i]!, (totals.get(events[i]!) ?? 0) + Number(fields[i + 1]));
    }
  }
  return { costs, totals };
}

/** The names V8 wrote for its compiled code (start, size, name), sorted by address. */
function perfMap(pid: number): { start: number; end: number; name: string }[] {
  const file = `/tmp/perf-${pid}.map`;
  const entries = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const [start, size, ...name] = l.split(" ");
      const s = parseInt(start!, 16);
      return { start: s, end: s + parseInt(size!, 16), name: name.join(" ") };
    })
    .sort((a, b) => a.start - b.start);
  if (process.env.KEEP !== "1") rmSync(file, { force: true });
  return entries;
}

function nameOf(entries: ReturnType<typeof perfMap>, fn: string): string {
  const m = /^0x([0-9a-f]+)$/.exec(fn);
  if (m === null) return fn;
  const address = parseInt(m[1]!, 16);
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = entries[mid]!;
    if (address < e.start) hi = mid - 1;
    else if (address >= e.end) lo = mid + 1;
    else return e.name;
  }
  return fn;
}

interface Count {
  mode: string;
  served: number;
  total: number;
  taproot: number;
  /** taproot's functions, heaviest first, per request. */
  functions: [string, number][];
  /** Every function's own instructions per request, by name (JavaScript without its tier mark), for DIFF. */
  all: Map<string, number>;
  /** The whole process's count of each event per request (Ir; with CACHE=1 also the cache misses). */
  events: Map<string, number>;
}

async function count(mode: string, dir: string): Promise<Count> {
  const child = spawn(
    "valgrind",
    [
      "--tool=callgrind",
      ...(CACHE ? ["--cache-sim=yes"] : []),
      `--callgrind-out-file=${join(dir, "callgrind.%p")}`,
      process.execPath,
      ...(PERF_MAP ? ["--perf-basic-prof"] : []),
      fileURLToPath(serverScriptOf(mode)),
    ],
    { stdio: ["ignore", "ignore", "ignore", "ipc"] },
  );
  try {
    const port = await ask<number>(child, mode, mode);
    const load = new KeepAliveLoad(port, CONNECTIONS);
    await load.open();
    await load.run(WARM_MS);
    await ask(child, mode, "mark");
    execFileSync("callgrind_control", ["--zero", String(child.pid)], { stdio: "ignore" });
    await load.run(RUN_MS);
    execFileSync("callgrind_control", ["--dump", String(child.pid)], { stdio: "ignore" });
    const { served } = await ask<{ served: number }>(child, mode, "report");
    load.close();
    const dump = join(dir, `callgrind.${child.pid}.1`);
    if (!existsSync(dump)) throw new Error(`${mode}: callgrind wrote no dump`);
    const entries = PERF_MAP ? perfMap(child.pid!) : [];
    const byName = new Map<string, number>();
    const { costs, totals } = selfCosts(dump);
    for (const [fn, cost] of costs) {
      // The same JavaScript function compiled by two tiers is one function here.
      const name = nameOf(entries, fn).replace(/^JS:[*~^+]?/, "JS:");
      byName.set(name, (byName.get(name) ?? 0) + cost / served);
    }
    const total = [...byName.values()].reduce((a, b) => a + b, 0);
    const functions = [...byName]
      .filter(([name]) => name.includes(dist))
      .map(([name, n]): [string, number] => [name.replace(dist, "").replace(/^JS:/, ""), n])
      .sort((a, b) => b[1] - a[1]);
    const taproot = functions.reduce((a, [, n]) => a + n, 0);
    const events = new Map([...totals].map(([event, n]): [string, number] => [event, n / served]));
    return { mode, served, total, taproot, functions, all: byName, events };
  } finally {
    child.kill("SIGKILL");
  }
}

const dir = mkdtempSync(join(tmpdir(), "taproot-instructions-"));
const counts: Count[] = [];
try {
  for (const mode of MODES) {
    console.log(`${mode}: under callgrind, ${WARM_MS} ms of warm-up, ${RUN_MS} ms counted…`);
    counts.push(await count(mode, dir));
  }
} finally {
  // KEEP=1 leaves the dumps (and V8's perf maps in /tmp) for callgrind_annotate.
  if (process.env.KEEP === "1") console.log(`callgrind dumps kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

/** What the shares are of: node:http alone, or the first mode when MODES leaves it out. */
const plain = counts.find((c) => c.mode === "plain") ?? counts[0];
const per = (n: number) => Math.round(n).toLocaleString("en");
const share = (n: number) =>
  plain === undefined ? "—" : `${((n / plain.total) * 100).toFixed(2)} %`;
const lines = [
  `# Instructions per request (callgrind)`,
  ``,
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, Node ${process.version}. Command: \`npm run bench:instructions\`. ${CONNECTIONS} keep-alive connections, ${WARM_MS / 1000} s of warm-up and ${RUN_MS / 1000} s counted per server, under valgrind.`,
  ``,
  `| server | requests counted | whole process, per request | taproot's own functions, per request | as a share of ${plain?.mode ?? "plain"}'s whole | taproot's functions (per request) |`,
  `| --- | ---: | ---: | ---: | ---: | --- |`,
  ...counts.map(
    (c) =>
      `| ${c.mode} | ${c.served.toLocaleString("en")} | ${per(c.total)} | ${per(c.taproot)} | ${c === plain ? "—" : share(c.taproot)} | ${
        c.functions
          .filter(([, n]) => n >= 1)
          .map(([name, n]) => `${name} ${per(n)}`)
          .join("; ") || "—"
      } |`,
  ),
  ``,
  `The whole-process figure moves by a few percent between runs (when the GC and the JIT run); taproot's`,
  `own functions do not. Instructions left out of taproot's column: Node's own work that taproot causes`,
  `(adding a close listener, emitting it, the per-turn clock's immediate), and every cost that is not an`,
  `instruction count (caches, branch prediction), which the CPU-time bench (bench/node-load.ts) measures.`,
  ``,
];
if (CACHE && counts.length > 0) {
  // Callgrind's simulated caches: first level (D1, I1) and last level (LL), reads (r) and writes (w).
  const events = [...counts[0]!.events.keys()].filter((e) => e !== "Ir");
  lines.push(
    `## Simulated cache misses per request (CACHE=1)`,
    ``,
    `| server | ${events.join(" | ")} |`,
    `| --- | ${events.map(() => "---:").join(" | ")} |`,
    ...counts.map(
      (c) => `| ${c.mode} | ${events.map((e) => per(c.events.get(e) ?? 0)).join(" | ")} |`,
    ),
    ``,
    `Events as callgrind names them: Dr/Dw data reads and writes, D1mr/D1mw their first-level misses, DLmr/DLmw`,
    `their last-level misses; I1mr/ILmr the instruction fetches' misses.`,
    ``,
  );
}

/**
 * DIFF (a number) adds, for each mode after the first, the functions whose
 * own instructions per request differ most from the first mode's: where a
 * difference in the whole process's count comes from, taproot's or not.
 */
const DIFF = Number(process.env.DIFF ?? 0);
const first = counts[0];
if (DIFF > 0 && first !== undefined) {
  for (const c of counts.slice(1)) {
    const names = new Set([...first.all.keys(), ...c.all.keys()]);
    const deltas = [...names]
      .map((name): [string, number] => [name, (c.all.get(name) ?? 0) - (first.all.get(name) ?? 0)])
      .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
      .slice(0, DIFF);
    lines.push(
      `## ${c.mode} against ${first.mode}: the ${DIFF} largest differences (own instructions per request)`,
      ``,
      `| function | ${first.mode} | ${c.mode} | difference |`,
      `| --- | ---: | ---: | ---: |`,
      ...deltas.map(
        ([name, d]) =>
          `| \`${name.replace(dist, "").replace(/\|/g, "\\|")}\` | ${per(first.all.get(name) ?? 0)} | ${per(c.all.get(name) ?? 0)} | ${d >= 0 ? "+" : "−"}${per(Math.abs(d))} |`,
      ),
      ``,
    );
  }
}
const table = lines.join("\n");
console.log(`\n${table}`);
writeFileSync(
  fileURLToPath(new URL("./results/instructions.md", import.meta.url)),
  await format(table, { parser: "markdown", printWidth: 100 }),
);
