/**
 * Which fresh server processes run slow, and is V8's runtime why
 * (`tsx bench/runtime-share.ts`, after `npm run build`; needs Linux `perf`).
 *
 * frameworks-load.ts found Fastify with taproot's plugin bimodal: most fresh
 * processes read a few percent over Fastify alone, some 25–40 %. This tool
 * tells the two kinds apart. For GENERATIONS sets of fresh servers (the
 * modes of bench/frameworks-load-server.js or, with SERVER=node, of
 * bench/node-load-server.js; MODES picks them, the first is the baseline) it
 * warms them up under one autocannon, then loads them at once for WINDOWS
 * windows of 1 s while `perf record` samples each process, and prints per
 * process its CPU per request beside the baseline's in the same windows, and
 * the share of its samples in V8's runtime functions named by SYMBOLS
 * (comma-separated substrings; by default the slow property-definition and
 * IC-miss paths). A share well above zero marks a process whose optimized
 * code calls into the runtime where others run inline.
 *
 * KEEP=folder keeps the recordings there (`<generation>-<mode>.perf`).
 *
 * The figures under perf are noisier than frameworks-load.ts's: use this to
 * classify processes, that to measure them.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  concurrentWindows,
  loadHttp,
  median,
  requireCommand,
  startLoadedServer,
  stopChild,
  type LoadedServer,
} from "./paired-rounds.js";

const SERVER = process.env.SERVER === "node" ? "node-load-server.js" : "frameworks-load-server.js";
const MODES = (
  process.env.MODES ??
  (SERVER === "node-load-server.js" ? "plain,requestContext+timeout" : "fastify,fastify+taproot")
).split(",");
const GENERATIONS = Number(process.env.GENERATIONS ?? 6);
const WINDOWS = Number(process.env.WINDOWS ?? 3);
const CONNECTIONS = 16;
const SYMBOLS = (
  process.env.SYMBOLS ??
  "Runtime_DefineKeyedOwnPropertyInLiteral,Map::TransitionToDataProperty,KeyedStoreIC_Miss,StoreIC_Miss,LoadIC_Miss"
).split(",");

// --perf-basic-prof names JIT code in perf's report (it writes /tmp/perf-<pid>.map).
const startServer = (mode: string) =>
  startLoadedServer(new URL(`./${SERVER}`, import.meta.url), mode, {
    nodeArgs: ["--perf-basic-prof"],
    quiet: true,
  });

/** record samples a process for `seconds` into `path`; resolves when perf has written it. */
function record(pid: number, path: string, seconds: number): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(
      "perf",
      [
        "record",
        "-q",
        "-e",
        "cpu-clock",
        "-o",
        path,
        "-p",
        String(pid),
        "--",
        "sleep",
        String(seconds),
      ],
      (err) =>
        err ? reject(new Error(`runtime-share: perf record failed: ${err.message}`)) : resolve(),
    ),
  );
}

/** shares returns the percentage of a recording's samples in each of SYMBOLS. */
function shares(path: string): Map<string, number> {
  const report = execFileSync("perf", ["report", "-i", path, "--stdio", "--sort", "sym"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    maxBuffer: 64 * 1024 * 1024,
  });
  const out = new Map<string, number>();
  for (const line of report.split("\n")) {
    const percent = /^\s*([\d.]+)%/.exec(line);
    if (percent === null) continue;
    for (const symbol of SYMBOLS) {
      if (line.includes(symbol)) out.set(symbol, (out.get(symbol) ?? 0) + Number(percent[1]));
    }
  }
  return out;
}

requireCommand("bench/runtime-share.ts", "perf", "linux-perf", "sample the servers");

/** Where the recordings go: KEEP names a folder to keep them in (for `perf report -i`), else a temporary one. */
const keep = process.env.KEEP;
const dir = keep ?? mkdtempSync(join(tmpdir(), "taproot-runtime-share-"));
if (keep !== undefined) mkdirSync(keep, { recursive: true });
console.log(
  `runtime-share: ${GENERATIONS} generations of ${MODES.join(", ")} (${SERVER}), ${WINDOWS} windows of 1 s under perf; shares of samples in ${SYMBOLS.join(", ")}`,
);
try {
  for (let generation = 1; generation <= GENERATIONS; generation++) {
    const servers: LoadedServer[] = [];
    try {
      for (const mode of MODES) servers.push(await startServer(mode));
      await loadHttp(
        {
          url: servers.map((s) => `http://127.0.0.1:${s.port}/`),
          connections: CONNECTIONS * servers.length,
        },
        3,
      );
      const paths = servers.map((s) => join(dir, `${generation}-${s.name}.perf`));
      // Recording starts with the windows' load and ends before it does.
      const recordings = servers.map((s, i) => record(s.child.pid!, paths[i]!, WINDOWS));
      const windows = await concurrentWindows(servers, { path: "/" }, CONNECTIONS, WINDOWS, 1);
      await Promise.all(recordings);
      const baseline = windows.get(MODES[0]!)!;
      const parts = servers.map((s, i) => {
        const mine = windows.get(s.name)!;
        const ratio = median(mine.map((m, w) => m.cpu / baseline[w]!.cpu)) - 1;
        const found = [...shares(paths[i]!)].map(
          ([symbol, share]) => `${symbol} ${share.toFixed(2)} %`,
        );
        const cpu = median(mine.map((m) => m.cpu)).toFixed(2);
        return `${s.name} ${cpu} µs (${ratio >= 0 ? "+" : ""}${(ratio * 100).toFixed(1)} %)${found.length > 0 ? ": " + found.join(", ") : ""}`;
      });
      console.log(`  generation ${generation}: ${parts.join(" | ")}`);
    } finally {
      for (const s of servers) {
        await stopChild(s.child);
        // The JIT symbol map --perf-basic-prof wrote; read by perf report above, of no use after.
        rmSync(`/tmp/perf-${s.child.pid}.map`, { force: true });
      }
    }
  }
} finally {
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
}
