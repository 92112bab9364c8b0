/**
 * Per-request cost of taproot's framework integrations (`tsx bench/frameworks-load.ts`,
 * after `npm run build`; part of `npm run bench:node`): each framework alone,
 * with a hook that does nothing (an empty onRequest hook, middleware or
 * interceptor: what the framework itself charges for any integration), and
 * with taproot's integration; a trivial handler, autocannon on loopback, each
 * server in a child process of its own (bench/frameworks-load-server.js,
 * plain node on dist/) that stays up for the whole run.
 *
 * - Fastify 5 alone / an empty onRequest hook / `contextPlugin` (GET)
 * - Hono on @hono/node-server alone / an empty middleware / `contextMiddleware`
 *   / `requestContext(c)` called by the handler, no middleware (GET)
 * - a Connect unary call (Connect protocol, JSON, HTTP/1.1) alone / an empty
 *   interceptor / `handlerInterceptor` and `handlerContext` (POST)
 *
 * Method (bench/paired-rounds.ts, concurrentWindows): a framework's
 * servers are loaded at the same time by one autocannon (16 connections
 * each), for ROUNDS (default 8) windows of SECONDS (default 1 s); in each
 * window every server's CPU time per request is divided by that of the
 * framework alone in the same window (the servers start, and take their
 * share of autocannon's connections, in an order rotated by one from one
 * generation to the next). That is one generation: GENERATIONS
 * (default 5) times, every server is started anew, and a side's figure is
 * the median over generations of each generation's median paired ratio,
 * printed with the generations' range (the interquartile range of all
 * windows is in the table beside it). Measured at the same
 * moment, both sides of a pair see the same machine; on this shared 2-core
 * VM rounds alternated in time read ±10 % between two identical servers,
 * these windows ±2 %. Then each taproot contender is profiled alone under
 * load for 2 s (V8's CPU profiler, bench/profile-share.ts): the share of
 * its CPU time in taproot's dist/ frames.
 *
 * The bar: taproot's integration costs at most 3 % CPU per request beside
 * the framework alone. Hono's middleware is judged beside an empty
 * middleware instead: any `app.use()` takes Hono off its fast path for a
 * route with one handler, at a price of its own that is printed; its
 * `requestContext(c)` form keeps that path and is judged beside Hono alone.
 * The exit code is 1 if a bar fails or a request failed.
 *
 * Prints a table and writes it to bench/results/frameworks-load.md.
 * FRAMEWORKS (e.g. "fastify,hono") picks some; VERBOSE=1 prints each window.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import {
  ask,
  concurrentWindows,
  formatSummary,
  loadHttp,
  quantile,
  startLoadedServer,
  stopChild,
  summarize,
  type HttpLoad,
  type LoadedServer,
  type Measured,
  type Summary,
} from "./paired-rounds.js";
import { profileShare, type ProfileShare } from "./profile-share.js";

interface Side {
  /** The server mode's suffix: fastify+hook, fastify+taproot, … */
  extra: string;
  label: string;
  /** What the bar compares it with; none for the empty hook, which is a reference. */
  judgedAgainst?: "alone" | "hook";
}

/** What autocannon sends each server, but where. */
type Request = Omit<HttpLoad, "url" | "connections"> & { path: string };

interface Framework {
  name: string;
  label: string;
  request: Request;
  sides: Side[];
}

const get: Request = { path: "/" };

const frameworks: Framework[] = [
  {
    name: "fastify",
    label: "Fastify 5",
    request: get,
    sides: [
      { extra: "hook", label: "an empty onRequest hook" },
      { extra: "taproot", label: "contextPlugin", judgedAgainst: "alone" },
    ],
  },
  {
    name: "hono",
    label: "Hono on @hono/node-server",
    request: get,
    sides: [
      { extra: "hook", label: "an empty middleware" },
      { extra: "taproot", label: "contextMiddleware()", judgedAgainst: "hook" },
      { extra: "function", label: "requestContext(c), no middleware", judgedAgainst: "alone" },
    ],
  },
  {
    name: "connect",
    label: "Connect unary (HTTP/1.1, JSON)",
    request: {
      path: "/taproot.test.Sleeper/Sleep",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "0",
    },
    sides: [
      { extra: "hook", label: "an empty interceptor" },
      {
        extra: "taproot",
        label: "handlerInterceptor + handlerContext",
        judgedAgainst: "alone",
      },
    ],
  },
];

/**
 * With TAPROOT_BENCH_BEFORE naming an earlier build's dist/ directory, each
 * framework also runs that build's integration (`+taproot@before`), in the
 * same windows: two builds in one run, the earlier one held to no bar.
 */
if (process.env.TAPROOT_BENCH_BEFORE !== undefined) {
  for (const fw of frameworks) {
    const own = fw.sides.find((side) => side.extra === "taproot")!;
    fw.sides.push({ extra: "taproot@before", label: `${own.label}, earlier build` });
  }
}
/**
 * TAPROOT_BENCH_VARIANTS (`name=/path/to/dist,…`) adds, to every framework, the
 * integration of each build it names (`+taproot@name`), in the same windows:
 * one-off variants of the code, held to no bar. A name holds no `+`, `=` or `,`.
 */
for (const entry of (process.env.TAPROOT_BENCH_VARIANTS ?? "").split(",")) {
  if (entry === "") continue;
  const at = entry.indexOf("=");
  const name = at === -1 ? "" : entry.slice(0, at);
  if (!/^[\w.-]+$/.test(name) || name === "before") {
    throw new Error(
      `bench/frameworks-load.ts: TAPROOT_BENCH_VARIANTS entry "${entry}" must read name=/path/to/dist, with a name of letters, digits, ".", "-" or "_" other than "before"`,
    );
  }
  for (const fw of frameworks)
    fw.sides.push({ extra: `taproot@${name}`, label: `variant ${name}` });
}

/**
 * Fresh sets of server processes: two processes started alike can read
 * several percent apart for their whole life (bench/node-load.ts), so each
 * generation starts every server anew, and a side's figure is the median of
 * the generations' medians.
 */
const GENERATIONS = Number(process.env.GENERATIONS ?? 5);
/** Windows per generation. */
const WINDOWS = Number(process.env.ROUNDS ?? 8);
const SECONDS = Number(process.env.SECONDS ?? 1);
/** Connections per server: 50 in all for Hono's four servers, as many per server for the others. */
const CONNECTIONS = 16;
const PROFILE_SECONDS = 2;
const BAR = 3;
const picked = process.env.FRAMEWORKS?.split(",");
const chosen = frameworks.filter((f) => picked === undefined || picked.includes(f.name));
const loadAtStart = loadavg()[0]!;
const started = Date.now();

const startServer = (mode: string) =>
  startLoadedServer(new URL("./frameworks-load-server.js", import.meta.url), mode);

const urlOf = (fw: Framework, s: LoadedServer) => `http://127.0.0.1:${s.port}${fw.request.path}`;

/** profile runs the server alone under the load for PROFILE_SECONDS with V8's profiler on. */
async function profile(fw: Framework, s: LoadedServer): Promise<ProfileShare> {
  const dir = mkdtempSync(join(tmpdir(), "taproot-prof-"));
  try {
    await ask(s.child, s.name, "profile-start");
    const { path: _path, ...rest } = fw.request;
    await loadHttp({ ...rest, url: urlOf(fw, s), connections: 50 }, PROFILE_SECONDS);
    const path = await ask<string>(s.child, s.name, {
      "profile-stop": join(dir, `${s.name}.cpuprofile`),
    });
    return profileShare(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each window's CPU per request of `of` over that of `than`, in the same window. */
const ratios = (of: Measured[], than: Measured[]) => of.map((m, i) => m.cpu / than[i]!.cpu);

interface Result {
  fw: Framework;
  /** Every window of every generation, in order, by server mode. */
  windows: Map<string, Measured[]>;
  /** Each generation's windows, by server mode. */
  generations: Map<string, Measured[]>[];
  profiles: Map<string, ProfileShare>;
}

console.log(
  `frameworks: ${GENERATIONS} generations of fresh servers × ${WINDOWS} windows of ${SECONDS} s, each framework's servers loaded at once (${chosen.map((f) => f.name).join(", ")})…`,
);
const results: Result[] = [];
for (const fw of chosen) {
  const modes = [fw.name, ...fw.sides.map((s) => `${fw.name}+${s.extra}`)];
  const result: Result = { fw, windows: new Map(), generations: [], profiles: new Map() };
  for (let generation = 0; generation < GENERATIONS; generation++) {
    const servers: LoadedServer[] = [];
    try {
      // Started, and so loaded, in an order rotated by one each generation:
      // in a fixed order, two copies of one build read 0.7–4.4 points apart,
      // always the same way round (BENCHMARKS.md, 8 December).
      for (let i = 0; i < modes.length; i++) {
        servers.push(await startServer(modes[(i + generation) % modes.length]!));
      }
      // Warm-up: JIT, sockets, lazy allocations, on every server before any window counts.
      const { path: _path, ...rest } = fw.request;
      await loadHttp(
        {
          ...rest,
          url: servers.map((s) => urlOf(fw, s)),
          connections: CONNECTIONS * servers.length,
        },
        2,
      );
      const windows = await concurrentWindows(servers, fw.request, CONNECTIONS, WINDOWS, SECONDS);
      result.generations.push(windows);
      for (const [mode, ws] of windows) {
        result.windows.set(mode, [...(result.windows.get(mode) ?? []), ...ws]);
      }
      console.log(
        `  ${fw.name}, generation ${generation + 1}: ${fw.sides
          .map((side) => {
            const own = windows.get(`${fw.name}+${side.extra}`)!;
            return `${side.extra} ${formatSummary(summarize(ratios(own, windows.get(fw.name)!)))}`;
          })
          .join(", ")} beside ${fw.name} alone`,
      );
      // The last generation's servers, warm, are profiled.
      if (generation === GENERATIONS - 1) {
        for (const side of fw.sides) {
          if (side.judgedAgainst === undefined) continue;
          const s = servers.find((x) => x.name === `${fw.name}+${side.extra}`)!;
          result.profiles.set(s.name, await profile(fw, s));
        }
      }
    } finally {
      for (const s of servers) await stopChild(s.child);
    }
  }
  results.push(result);
}

const failures: string[] = [];
const rows: string[] = [];
const verdicts: string[] = [];
const profileRows: string[] = [];
let requestErrors = 0;
const med = (xs: number[]) => quantile(xs, 0.5);
/** A side's judged figure, in percent: the median of the generations' medians, and their range. */
interface Judged {
  median: number;
  lowest: number;
  highest: number;
}
const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
const formatJudged = (j: Judged) =>
  `${signed(j.median)} % (generations ${signed(j.lowest)} … ${signed(j.highest)})`;
const cell = (s: Summary) => formatSummary(s);
for (const { fw, windows, generations, profiles } of results) {
  for (const ws of windows.values()) requestErrors += ws.reduce((n, m) => n + m.errors, 0);
  const base = windows.get(fw.name)!;
  const hook = windows.get(`${fw.name}+hook`)!;
  /**
   * The judged figure of `mode` beside `than`: the median over generations
   * of each generation's median paired ratio, with the generations' range.
   */
  const judge = (mode: string, than: string): Judged => {
    const medians = generations.map((g) => summarize(ratios(g.get(mode)!, g.get(than)!)).median);
    return { median: med(medians), lowest: Math.min(...medians), highest: Math.max(...medians) };
  };
  rows.push(
    `| ${fw.label} alone | ${Math.round(med(base.map((m) => m.rate))).toLocaleString("en")} | ${med(base.map((m) => m.cpu)).toFixed(1)} µs | — | — |`,
  );
  for (const side of fw.sides) {
    const mode = `${fw.name}+${side.extra}`;
    const own = windows.get(mode)!;
    const vsAlone = summarize(ratios(own, base));
    const vsHook = side.extra === "hook" ? undefined : summarize(ratios(own, hook));
    rows.push(
      `| ${fw.label}, ${side.label} | ${Math.round(med(own.map((m) => m.rate))).toLocaleString("en")} | ${med(own.map((m) => m.cpu)).toFixed(1)} µs | ${cell(vsAlone)} | ${vsHook === undefined ? "—" : cell(vsHook)} |`,
    );
    const prof = profiles.get(mode);
    if (prof !== undefined) {
      const cpu = med(own.map((m) => m.cpu));
      profileRows.push(
        `| ${fw.label}, ${side.label} | ${(prof.taproot * 100).toFixed(1)} % (${((prof.taproot * cpu * 1000) | 0).toLocaleString("en")} ns) | ${(prof.gc * 100).toFixed(1)} % | ${prof.top.map((t) => `${t.name} ${(t.share * 100).toFixed(1)} %`).join("; ")} |`,
      );
    }
    if (side.judgedAgainst === undefined) continue;
    const judged = judge(mode, side.judgedAgainst === "alone" ? fw.name : `${fw.name}+hook`);
    const against =
      side.judgedAgainst === "alone"
        ? `${fw.label} alone`
        : `an empty middleware (which itself costs ${formatJudged(judge(`${fw.name}+hook`, fw.name))} beside ${fw.label} alone: Hono's dispatch of any middleware)`;
    const ok = judged.median <= BAR;
    verdicts.push(
      `- ${fw.label}, ${side.label}: ${formatJudged(judged)} CPU per request against ${against}: ${ok ? "pass" : "FAIL"} (≤ ${BAR} %).`,
    );
    if (!ok) failures.push(`${mode}: ${judged.median.toFixed(1)} % > ${BAR} %`);
  }
}

// taproot's own work per request, in a process of its own, without sockets.
const work = JSON.parse(
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL("./frameworks-work.js", import.meta.url))],
    {
      encoding: "utf8",
    },
  ),
) as Record<string, { bare: number; taproot: number }>;
const workRows = (
  [
    ["hono", "contextMiddleware on real node:http objects, beside an empty middleware"],
    [
      "hono-function",
      "requestContext(c) on real node:http objects, beside a handler that does not call it",
    ],
    [
      "connect",
      "handlerInterceptor + handlerContext and the call's end, beside the bare HandlerContext",
    ],
  ] as const
).map(
  ([name, what]) =>
    `| ${name} | ${what} | ${(work[name]!.taproot - work[name]!.bare).toFixed(0)} ns |`,
);

const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const lines = [
  `# taproot's framework integrations: per-request cost`,
  ``,
  `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, Node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} CPUs, loopback. Command: \`npm run build && tsx bench/frameworks-load.ts\` (${minutes} min; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end).`,
  ``,
  `## Server CPU per request of a trivial handler (autocannon, ${CONNECTIONS} connections per server, a framework's servers loaded at once; ${GENERATIONS} generations of fresh servers × ${WINDOWS} windows of ${SECONDS} s, each server's window paired with the framework alone's in the same window; the verdicts below take the median of the generations' medians)`,
  ``,
  `| server | req/s | CPU per request | vs the framework alone: median of paired ratios (IQR) | vs the empty hook, the same way |`,
  `| --- | ---: | ---: | ---: | ---: |`,
  ...rows,
  ``,
  ...verdicts,
  ``,
  `## Share of the server's CPU time in taproot's frames (V8 CPU profile, ${PROFILE_SECONDS} s under the same load)`,
  ``,
  `A sample is taproot's when the nearest frame above it that is not Node's or V8's own is in dist/: its`,
  `code and the Node calls it makes (listeners, timers), not the framework code it calls back.`,
  `GC is shared by everything that allocates.`,
  ``,
  `| server | taproot (per request) | GC | heaviest taproot functions |`,
  `| --- | ---: | ---: | --- |`,
  ...profileRows,
  ``,
  `## taproot's own work per request, in-process (bench/frameworks-work.js)`,
  ``,
  `| case | what | extra CPU per request |`,
  `| --- | --- | ---: |`,
  ...workRows,
  ``,
  `Failed requests (autocannon errors and non-2xx): ${requestErrors}.`,
  ``,
];
const table = lines.join("\n");
console.log(`\n${table}`);
writeFileSync(
  fileURLToPath(new URL("./results/frameworks-load.md", import.meta.url)),
  await format(table, { parser: "markdown", printWidth: 100 }),
);
if (requestErrors > 0) failures.push(`${requestErrors} failed requests`);
if (failures.length > 0) {
  console.error(`FAIL: ${failures.join("; ")}`);
  process.exitCode = 1;
}
