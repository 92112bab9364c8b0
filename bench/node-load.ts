/**
 * Load test of taproot/node (`npm run bench:node`).
 *
 * 1. Churn: 10,000 requests through serve() on loopback, 100 at a time, of
 *    which a random third disconnect early. Checks: no unexpected error,
 *    every early disconnect seen as a canceled context, zero live request
 *    contexts afterwards, heap back to its baseline.
 * 2. Overhead: throughput of a trivial handler with node:http alone and with
 *    the serve() wrapper (autocannon, server in a child process, rounds
 *    alternated, median kept). The wrapper must cost under 10%.
 *
 * Prints a table and writes it to bench/results/node-load.md.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { cpus, loadavg } from "node:os";
import { format } from "prettier";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import { cause, sleep } from "../src/index.js";
import { liveChildCount } from "../src/introspect.js";
import { ClientDisconnectedError, serve } from "../src/node/index.js";

// `tsx bench/node-load.ts` cannot pass --expose-gc; this turns it on late.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  errors: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)("autocannon") as (
  opts: { url: string; connections: number; duration: number; pipelining: number },
  cb: (err: Error | null, result: AutocannonResult) => void,
) => unknown;

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

interface Round {
  rps: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuPerRequest: number;
}

async function throughput(mode: string, seconds: number): Promise<Round> {
  const server = spawn(
    process.execPath,
    [fileURLToPath(new URL("./node-load-server.js", import.meta.url)), mode],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const reply = <T>() =>
    new Promise<T>((resolve) => server.once("message", (m) => resolve(m as T)));
  const port = await reply<number>();
  const url = `http://127.0.0.1:${port}/`;
  const run = (duration: number) =>
    new Promise<AutocannonResult>((resolve, reject) =>
      autocannon({ url, connections: 50, duration, pipelining: 1 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  await run(1); // warm up
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

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
const kb = (n: number) => `${n >= 0 ? "+" : ""}${(n / 1024).toFixed(0)} KB`;

const loadAtStart = loadavg()[0]!;
console.log(`churn: ${TOTAL} requests, ${CONCURRENCY} at a time, a random third hang up early…`);
const load = await loadTest();
const heapDelta = load.after - load.baseline;

const ROUNDS = Number(process.env.ROUNDS ?? 11);
const SECONDS = Number(process.env.SECONDS ?? 2);
const modes = (process.env.MODES ?? "plain,requestContext+timeout,serve,serve+timeout").split(",");
const rounds: Record<string, Round[]> = Object.fromEntries(modes.map((m) => [m, []]));
console.log(`throughput: ${ROUNDS} rounds of ${SECONDS} s per server, alternated…`);
for (let round = 0; round < ROUNDS; round++) {
  for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
    const r = await throughput(mode, SECONDS);
    rounds[mode]!.push(r);
    if (process.env.VERBOSE)
      console.log(
        `  ${mode}: ${r.cpuPerRequest.toFixed(1)} µs/request, ${Math.round(r.rps)} req/s`,
      );
  }
}
const med = (mode: string, f: (r: Round) => number) => median(rounds[mode]!.map(f));
const acErrors = modes.reduce((n, m) => n + rounds[m]!.reduce((k, r) => k + r.errors, 0), 0);
/**
 * ratios pairs each round of `mode` with the node:http round next to it in
 * time, so both saw the same load from the rest of the machine.
 */
const ratios = (mode: string, f: (r: Round) => number) =>
  rounds[mode]!.map((r, i) => f(r) / f(rounds.plain![i]!));
/** overhead: extra server CPU per request (median of the paired ratios), the inverse of throughput at saturation. */
const overhead = (mode: string) => (median(ratios(mode, (r) => r.cpuPerRequest)) - 1) * 100;
const spread = (mode: string) => {
  const xs = ratios(mode, (r) => r.cpuPerRequest).map((x) => (x - 1) * 100);
  return `${Math.min(...xs).toFixed(0)}% … ${Math.max(...xs).toFixed(0)}%`;
};
const rpsOverhead = (mode: string) => (1 - median(ratios(mode, (r) => r.rps))) * 100;

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
  `## Throughput of a trivial handler (autocannon, 50 connections, ${ROUNDS} alternated rounds of ${SECONDS} s)`,
  ``,
  `| server | req/s | p99 latency | server CPU per request | overhead (CPU) | rounds' spread (CPU) | overhead (req/s) |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...modes.map((m) => {
    const name =
      m === "plain" ? "node:http alone" : m === "serve" ? "serve()" : "serve() with timeout: 5 s";
    const rps = Math.round(med(m, (r) => r.rps)).toLocaleString("en");
    const cpu = med(m, (r) => r.cpuPerRequest).toFixed(1);
    const o = m === "plain" ? "—" : `${overhead(m).toFixed(1)}%`;
    const ro = m === "plain" ? "—" : `${rpsOverhead(m).toFixed(1)}%`;
    const sp = m === "plain" ? "—" : spread(m);
    return `| ${name} | ${rps} | ${med(m, (r) => r.p99)} ms | ${cpu} µs | ${o} | ${sp} | ${ro} |`;
  }),
  ``,
  `Medians over the rounds. autocannon errors and non-2xx responses: ${acErrors}. The server`,
  `runs in its own process; the load generator shares the machine (${cpus().length} CPUs, load`,
  `average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end). Overhead is judged on`,
  `server CPU time per request, which bounds throughput at saturation and which other`,
  `processes disturb less than wall-clock req/s; each wrapper round is compared with the`,
  `node:http round next to it in time, and the median of those ratios is kept.`,
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
if (overhead("serve") >= 10)
  failures.push(`serve() overhead ${overhead("serve").toFixed(1)}% >= 10%`);
if (failures.length > 0) {
  console.error(`FAIL: ${failures.join("; ")}`);
  process.exitCode = 1;
}
