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
 * Method (bench/paired-rounds.ts): short rounds (SECONDS, default 0.4 s) of
 * the framework alone and of one contender strictly alternate, each
 * contender's server CPU time per request is divided by the mean of the
 * baseline rounds on either side of it, and the median of ROUNDS (default
 * 24) such ratios per contender is kept, with its interquartile range. Then
 * each taproot contender is profiled under the same load for 2 s (V8's CPU
 * profiler, bench/profile-share.ts): the share of its CPU time in taproot's
 * dist/ frames.
 *
 * The bar: taproot's integration costs at most 3 % CPU per request beside
 * the framework alone. Hono's middleware is judged beside an empty
 * middleware instead: any `app.use()` takes Hono off its fast path for a
 * route with one handler, at a price of its own that is printed; its
 * `requestContext(c)` form keeps that path and is judged beside Hono alone.
 * The exit code is 1 if a bar fails or a request failed.
 *
 * Prints a table and writes it to bench/results/frameworks-load.md.
 * FRAMEWORKS (e.g. "fastify,hono") picks some; VERBOSE=1 prints each round.
 */
import { spawn, type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import {
  ask,
  formatSummary,
  httpRound,
  loadHttp,
  pairedRounds,
  quantile,
  replyFrom,
  stopChild,
  summarize,
  type HttpLoad,
  type Measured,
  type Paired,
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

interface Framework {
  name: string;
  label: string;
  /** What autocannon sends. */
  load: (port: number) => HttpLoad;
  sides: Side[];
}

const get = (port: number): HttpLoad => ({
  url: `http://127.0.0.1:${port}/`,
  connections: 50,
  pipelining: 1,
});

const frameworks: Framework[] = [
  {
    name: "fastify",
    label: "Fastify 5",
    load: get,
    sides: [
      { extra: "hook", label: "an empty onRequest hook" },
      { extra: "taproot", label: "contextPlugin", judgedAgainst: "alone" },
    ],
  },
  {
    name: "hono",
    label: "Hono on @hono/node-server",
    load: get,
    sides: [
      { extra: "hook", label: "an empty middleware" },
      { extra: "taproot", label: "contextMiddleware()", judgedAgainst: "hook" },
      { extra: "function", label: "requestContext(c), no middleware", judgedAgainst: "alone" },
    ],
  },
  {
    name: "connect",
    label: "Connect unary (HTTP/1.1, JSON)",
    load: (port) => ({
      ...get(port),
      url: `http://127.0.0.1:${port}/taproot.test.Sleeper/Sleep`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "0",
    }),
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

const CYCLES = Number(process.env.ROUNDS ?? 24);
const SECONDS = Number(process.env.SECONDS ?? 0.4);
const PROFILE_SECONDS = 2;
const BAR = 3;
const picked = process.env.FRAMEWORKS?.split(",");
const chosen = frameworks.filter((f) => picked === undefined || picked.includes(f.name));
const loadAtStart = loadavg()[0]!;
const started = Date.now();

async function startServer(mode: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("./frameworks-load-server.js", import.meta.url)), mode],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  return { child, port: await replyFrom<number>(child, mode) };
}

/** profile runs the server under the load for PROFILE_SECONDS with V8's profiler on. */
async function profile(server: ChildProcess, mode: string, load: HttpLoad): Promise<ProfileShare> {
  const dir = mkdtempSync(join(tmpdir(), "taproot-prof-"));
  try {
    await ask(server, mode, "profile-start");
    await loadHttp(load, PROFILE_SECONDS);
    const path = await ask<string>(server, mode, {
      "profile-stop": join(dir, `${mode}.cpuprofile`),
    });
    return profileShare(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Result {
  fw: Framework;
  base: Measured[];
  paired: Map<string, Paired>;
  profiles: Map<string, ProfileShare>;
}

console.log(
  `frameworks: ${CYCLES} paired rounds of ${SECONDS} s per contender, strictly alternated with the framework alone (${chosen.map((f) => f.name).join(", ")})…`,
);
const results: Result[] = [];
for (const fw of chosen) {
  const modes = [fw.name, ...fw.sides.map((s) => `${fw.name}+${s.extra}`)];
  const servers = new Map<string, { child: ChildProcess; port: number }>();
  try {
    for (const mode of modes) servers.set(mode, await startServer(mode));
    // Warm-up: JIT, sockets, lazy allocations, on every server before any round counts.
    for (const mode of modes) await loadHttp(fw.load(servers.get(mode)!.port), 1);
    const contender = (mode: string) => {
      const s = servers.get(mode)!;
      return { name: mode, round: () => httpRound(s.child, mode, fw.load(s.port), SECONDS) };
    };
    const { base, paired } = await pairedRounds(
      contender(fw.name),
      modes.slice(1).map(contender),
      CYCLES,
      process.env.VERBOSE
        ? (name, m) =>
            console.log(`  ${name}: ${m.cpu.toFixed(1)} µs/request, ${Math.round(m.rate)} req/s`)
        : undefined,
    );
    const profiles = new Map<string, ProfileShare>();
    for (const side of fw.sides) {
      if (side.judgedAgainst === undefined) continue;
      const mode = `${fw.name}+${side.extra}`;
      const s = servers.get(mode)!;
      profiles.set(mode, await profile(s.child, mode, fw.load(s.port)));
    }
    results.push({ fw, base, paired, profiles });
  } finally {
    for (const s of servers.values()) await stopChild(s.child);
  }
}

const failures: string[] = [];
const rows: string[] = [];
const verdicts: string[] = [];
const profileRows: string[] = [];
let requestErrors = 0;
const med = (xs: number[]) => quantile(xs, 0.5);
const cell = (s: Summary) => formatSummary(s);
for (const { fw, base, paired, profiles } of results) {
  requestErrors += base.reduce((n, m) => n + m.errors, 0);
  for (const p of paired.values()) requestErrors += p.rounds.reduce((n, m) => n + m.errors, 0);
  const hook = paired.get(`${fw.name}+hook`)!;
  rows.push(
    `| ${fw.label} alone | ${Math.round(med(base.map((m) => m.rate))).toLocaleString("en")} | ${med(base.map((m) => m.cpu)).toFixed(1)} µs | — | — |`,
  );
  for (const side of fw.sides) {
    const mode = `${fw.name}+${side.extra}`;
    const p = paired.get(mode)!;
    const vsAlone = summarize(p.ratios);
    // Against the empty hook: each cycle's two ratios to the framework alone, divided.
    const vsHook =
      side.extra === "hook" ? undefined : summarize(p.ratios.map((r, i) => r / hook.ratios[i]!));
    rows.push(
      `| ${fw.label}, ${side.label} | ${Math.round(med(p.rounds.map((m) => m.rate))).toLocaleString("en")} | ${med(p.rounds.map((m) => m.cpu)).toFixed(1)} µs | ${cell(vsAlone)} | ${vsHook === undefined ? "—" : cell(vsHook)} |`,
    );
    const prof = profiles.get(mode);
    if (prof !== undefined) {
      const cpu = med(p.rounds.map((m) => m.cpu));
      profileRows.push(
        `| ${fw.label}, ${side.label} | ${(prof.taproot * 100).toFixed(1)} % (${((prof.taproot * cpu * 1000) | 0).toLocaleString("en")} ns) | ${(prof.gc * 100).toFixed(1)} % | ${prof.top.map((t) => `${t.name} ${(t.share * 100).toFixed(1)} %`).join("; ")} |`,
      );
    }
    if (side.judgedAgainst === undefined) continue;
    const judged = side.judgedAgainst === "alone" ? vsAlone : vsHook!;
    const against =
      side.judgedAgainst === "alone"
        ? `${fw.label} alone`
        : `an empty middleware (which itself costs ${formatSummary(summarize(hook.ratios))} beside ${fw.label} alone: Hono's dispatch of any middleware)`;
    const ok = judged.median <= BAR;
    verdicts.push(
      `- ${fw.label}, ${side.label}: ${formatSummary(judged)} CPU per request against ${against}: ${ok ? "pass" : "FAIL"} (≤ ${BAR} %).`,
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
  `## Server CPU per request of a trivial handler (autocannon, 50 connections; ${CYCLES} rounds of ${SECONDS} s per contender, each paired with the rounds of the framework alone on either side)`,
  ``,
  `| server | req/s | CPU per request | vs the framework alone: median of paired ratios (IQR) | vs the empty hook |`,
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
