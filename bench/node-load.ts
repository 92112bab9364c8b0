/**
 * Load test of taproot/node (`npm run bench:node`).
 *
 * 1. Churn: 10,000 requests through serve() on loopback, 100 at a time, of
 *    which a random third disconnect early. Checks: no unexpected error,
 *    every early disconnect seen as a canceled context, zero live request
 *    contexts afterwards, heap back to its baseline.
 * 2. Overhead: server CPU per request of a trivial handler with node:http
 *    alone, with requestContext(req, res, { timeout: 5000 }) on node:http,
 *    with serve() and with serve({ timeout: 5000 }) (autocannon, 50
 *    connections, each server in a child process, rounds alternated, each
 *    wrapper round paired with the node:http round next to it, median of the
 *    ratios kept). Each must cost at most 3 % (×1.03).
 *
 * Prints a table and writes it to bench/results/node-load.md.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { format } from "prettier";
import { loadRound, median, type Round } from "./load-round.js";
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

async function throughput(mode: string, seconds: number, profileDir?: string): Promise<Round> {
  const server = spawn(
    process.execPath,
    [
      ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
      fileURLToPath(new URL("./node-load-server.js", import.meta.url)),
      mode,
    ],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  return loadRound(
    server,
    mode,
    (port) => ({ url: `http://127.0.0.1:${port}/`, connections: 50, pipelining: 1 }),
    seconds,
  );
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

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * layerShare profiles a server under the same load and returns the share of
 * its busy CPU time (all but idle) spent in taproot (frames of dist/) and in
 * what taproot called, leaving out the handler's own work (frames of
 * node-load-server.js and below): the cost of the request layer, read from
 * samples, which a busy machine slows down but does not skew. GC is counted
 * apart: it belongs to no frame.
 */
async function layerShare(mode: string): Promise<{ layer: number; gc: number }> {
  const dir = mkdtempSync(join(tmpdir(), "taproot-prof-"));
  try {
    await throughput(mode, SECONDS * 2, dir);
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
    const p = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile;
    const parent = new Map<number, number>();
    const byId = new Map<number, ProfileNode>();
    for (const n of p.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    // Whose work a sample is: the nearest frame that is taproot's or the handler's.
    const owner = new Map<number, "layer" | "other">();
    const ownerOf = (id: number): "layer" | "other" => {
      let o = owner.get(id);
      if (o !== undefined) return o;
      const url = byId.get(id)!.callFrame.url;
      if (url.includes("/dist/")) o = "layer";
      else if (url.includes("node-load-server")) o = "other";
      else {
        const up = parent.get(id);
        o = up === undefined ? "other" : ownerOf(up);
      }
      owner.set(id, o);
      return o;
    };
    let busy = 0;
    let layer = 0;
    let gc = 0;
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i]!;
      const dt = p.timeDeltas[i] ?? 0;
      const name = byId.get(id)!.callFrame.functionName;
      if (name === "(idle)") continue;
      busy += dt;
      if (name === "(garbage collector)") gc += dt;
      else if (ownerOf(id) === "layer") layer += dt;
    }
    return { layer: layer / busy, gc: gc / busy };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log("profiles: one run per server under --cpu-prof…");
const shares: Record<string, { layer: number; gc: number }> = {};
for (const m of modes) shares[m] = await layerShare(m);
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

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
      m === "plain"
        ? "node:http alone"
        : m === "serve"
          ? "serve()"
          : m === "serve+timeout"
            ? "serve() with timeout: 5 s"
            : "node:http + requestContext(req, res, { timeout: 5 s })";
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
  `## Where the CPU goes (one profiled run per server, --cpu-prof)`,
  ``,
  `| server | busy CPU in the request layer | busy CPU in GC |`,
  `| --- | ---: | ---: |`,
  ...modes.map(
    (m) => `| ${m} | ${m === "plain" ? "—" : pct(shares[m]!.layer)} | ${pct(shares[m]!.gc)} |`,
  ),
  ``,
  `The request layer is every sample whose nearest frame of interest is taproot's (dist/)`,
  `rather than the handler's: taproot's functions and the Node functions they call`,
  `(listeners added, timers). Samples say where the CPU went whatever else runs on the`,
  `machine, so this column holds still where the rounds above move by ±15 %.`,
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
for (const m of modes) {
  if (m !== "plain" && overhead(m) > 3) {
    failures.push(`${m} overhead ${overhead(m).toFixed(1)}% > 3%`);
  }
}
if (failures.length > 0) {
  console.error(`FAIL: ${failures.join("; ")}`);
  process.exitCode = 1;
}
