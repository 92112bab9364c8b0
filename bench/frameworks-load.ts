/**
 * Per-request cost of taproot's framework integrations (`tsx bench/frameworks-load.ts`,
 * after `npm run build`): each framework alone beside the same framework with
 * taproot's integration, a trivial handler, autocannon on loopback, the
 * server in a child process (bench/frameworks-load-server.js, plain node on
 * dist/), rounds alternated, server CPU time per request compared pairwise
 * with the round next to it in time, the median of those ratios kept. The
 * bar: at most 3 % more CPU per request.
 *
 * - Fastify 5 alone / with `contextPlugin` (GET)
 * - Hono on @hono/node-server alone / with `contextMiddleware` (GET)
 * - a Connect unary call (Connect protocol, JSON, HTTP/1.1) alone / with
 *   `handlerInterceptor` and `handlerContext` (POST)
 *
 * Prints a table and writes it to bench/results/frameworks-load.md.
 * ROUNDS (default 11) and SECONDS (default 2) set the length; FRAMEWORKS
 * (e.g. "fastify,hono") picks some.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { format } from "prettier";

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  errors: number;
  non2xx: number;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  pipelining: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (
  opts: AutocannonOptions,
  cb: (err: Error | null, result: AutocannonResult) => void,
) => unknown;

interface Framework {
  name: string;
  label: string;
  /** What autocannon sends, beside the URL. */
  request: (port: number) => AutocannonOptions;
}

const get = (port: number): AutocannonOptions => ({
  url: `http://127.0.0.1:${port}/`,
  connections: 50,
  duration: 1,
  pipelining: 1,
});

const frameworks: Framework[] = [
  { name: "fastify", label: "Fastify 5", request: get },
  { name: "hono", label: "Hono on @hono/node-server", request: get },
  {
    name: "connect",
    label: "Connect unary (HTTP/1.1, JSON)",
    request: (port) => ({
      ...get(port),
      url: `http://127.0.0.1:${port}/taproot.test.Sleeper/Sleep`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "0",
    }),
  },
];

interface Round {
  rps: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuPerRequest: number;
}

async function throughput(fw: Framework, mode: string, seconds: number): Promise<Round> {
  const server = spawn(
    process.execPath,
    [fileURLToPath(new URL("./frameworks-load-server.js", import.meta.url)), mode],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const reply = <T>() =>
    new Promise<T>((resolve, reject) => {
      server.once("message", (m) => resolve(m as T));
      server.once("exit", (code) => reject(new Error(`server ${mode} exited with ${code}`)));
    });
  const port = await reply<number>();
  const run = (duration: number) =>
    new Promise<AutocannonResult>((resolve, reject) =>
      autocannon({ ...fw.request(port), duration }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  await run(1); // warm up: JIT, sockets, lazy allocations
  server.send("mark");
  const result = await run(seconds);
  const usage = reply<{ cpuMicros: number; served: number }>();
  server.send("report");
  const { cpuMicros, served } = await usage;
  server.send("stop");
  await new Promise((r) => server.once("exit", r));
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    cpuPerRequest: cpuMicros / served,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const ROUNDS = Number(process.env.ROUNDS ?? 11);
const SECONDS = Number(process.env.SECONDS ?? 2);
const BAR = 3;
const picked = process.env.FRAMEWORKS?.split(",");
const chosen = frameworks.filter((f) => picked === undefined || picked.includes(f.name));
const loadAtStart = loadavg()[0]!;

console.log(
  `frameworks: ${ROUNDS} rounds of ${SECONDS} s per server, alternated (${chosen.map((f) => f.name).join(", ")})…`,
);
const results = new Map<string, { base: Round[]; taproot: Round[] }>();
for (const fw of chosen) results.set(fw.name, { base: [], taproot: [] });
for (let round = 0; round < ROUNDS; round++) {
  for (const fw of chosen) {
    const r = results.get(fw.name)!;
    // Alternate which of the pair runs first, so neither always gets the warmer machine.
    const order = round % 2 === 0 ? (["base", "taproot"] as const) : (["taproot", "base"] as const);
    for (const side of order) {
      const mode = side === "base" ? fw.name : `${fw.name}+taproot`;
      const one = await throughput(fw, mode, SECONDS);
      r[side].push(one);
      if (process.env.VERBOSE) {
        console.log(
          `  ${mode}: ${one.cpuPerRequest.toFixed(1)} µs/request, ${Math.round(one.rps)} req/s`,
        );
      }
    }
  }
}

const failures: string[] = [];
const rows: string[] = [];
let acErrors = 0;
for (const fw of chosen) {
  const { base, taproot } = results.get(fw.name)!;
  acErrors += [...base, ...taproot].reduce((n, r) => n + r.errors, 0);
  // Each taproot round against the base round of the same pair, next to it in time.
  const cpuRatios = taproot.map((r, i) => r.cpuPerRequest / base[i]!.cpuPerRequest);
  const rpsRatios = taproot.map((r, i) => r.rps / base[i]!.rps);
  const overhead = (median(cpuRatios) - 1) * 100;
  const spread = cpuRatios.map((x) => (x - 1) * 100);
  const row = (name: string, rs: Round[], o: string, sp: string, ro: string) =>
    `| ${name} | ${Math.round(median(rs.map((r) => r.rps))).toLocaleString("en")} | ${median(rs.map((r) => r.p99))} ms | ${median(rs.map((r) => r.cpuPerRequest)).toFixed(1)} µs | ${o} | ${sp} | ${ro} |`;
  rows.push(row(`${fw.label} alone`, base, "—", "—", "—"));
  rows.push(
    row(
      `${fw.label} with taproot`,
      taproot,
      `${overhead.toFixed(1)}%`,
      `${Math.min(...spread).toFixed(0)}% … ${Math.max(...spread).toFixed(0)}%`,
      `${((1 - median(rpsRatios)) * 100).toFixed(1)}%`,
    ),
  );
  if (overhead > BAR) failures.push(`${fw.name}: overhead ${overhead.toFixed(1)}% > ${BAR}%`);
}

const lines = [
  `# taproot's framework integrations: per-request cost`,
  ``,
  `Node ${process.version}, ${process.platform}/${process.arch}, loopback. Command: \`npm run build && tsx bench/frameworks-load.ts\`.`,
  ``,
  `## A trivial handler, each framework alone and with taproot (autocannon, 50 connections, ${ROUNDS} alternated rounds of ${SECONDS} s)`,
  ``,
  `| server | req/s | p99 latency | server CPU per request | overhead (CPU) | rounds' spread (CPU) | overhead (req/s) |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...rows,
  ``,
  `Medians over the rounds. autocannon errors and non-2xx responses: ${acErrors}. Each server`,
  `runs in its own process; the load generator shares the machine (${cpus().length} CPUs, load`,
  `average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end). Overhead is judged on`,
  `server CPU time per request, paired round by round with the framework alone; the bar is ${BAR} %.`,
  ``,
];
const table = lines.join("\n");
console.log(`\n${table}`);
writeFileSync(
  fileURLToPath(new URL("./results/frameworks-load.md", import.meta.url)),
  await format(table, { parser: "markdown", printWidth: 100 }),
);
if (acErrors > 0) failures.push(`${acErrors} autocannon errors or non-2xx responses`);
if (failures.length > 0) {
  console.error(`FAIL: ${failures.join("; ")}`);
  process.exitCode = 1;
}
