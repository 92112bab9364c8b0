/**
 * Per-request cost of taproot's framework integrations (`tsx bench/frameworks-load.ts`,
 * after `npm run build`): each framework alone, with a hook that does nothing
 * (an empty onRequest hook, middleware or interceptor: what the framework
 * itself charges for any integration), and with taproot's integration; a
 * trivial handler, autocannon on loopback, the server in a child process
 * (bench/frameworks-load-server.js, plain node on dist/), rounds alternated,
 * server CPU time per request compared pairwise with the round next to it in
 * time, the median of those ratios kept. The bar: at most 3 % more CPU per
 * request than the framework alone, or, where the framework's own hook
 * mechanism already costs more than that (Hono leaves its fast path for any
 * middleware), than the framework with an empty hook; both figures are
 * printed.
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
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import { loadRound, median, type LoadRequest, type Round } from "./load-round.js";

interface Framework {
  name: string;
  label: string;
  /** What the framework calls the hook an integration plugs into. */
  hook: string;
  /** What autocannon sends, beside the URL. */
  request: (port: number) => LoadRequest;
}

const get = (port: number): LoadRequest => ({
  url: `http://127.0.0.1:${port}/`,
  connections: 50,
  pipelining: 1,
});

const frameworks: Framework[] = [
  { name: "fastify", label: "Fastify 5", hook: "onRequest hook", request: get },
  { name: "hono", label: "Hono on @hono/node-server", hook: "middleware", request: get },
  {
    name: "connect",
    label: "Connect unary (HTTP/1.1, JSON)",
    hook: "interceptor",
    request: (port) => ({
      ...get(port),
      url: `http://127.0.0.1:${port}/taproot.test.Sleeper/Sleep`,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "0",
    }),
  },
];

async function throughput(fw: Framework, mode: string, seconds: number): Promise<Round> {
  const server = spawn(
    process.execPath,
    [fileURLToPath(new URL("./frameworks-load-server.js", import.meta.url)), mode],
    { stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  return loadRound(server, mode, fw.request, seconds);
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
const SIDES = ["base", "hook", "taproot"] as const;
type Side = (typeof SIDES)[number];
const results = new Map<string, Record<Side, Round[]>>();
for (const fw of chosen) results.set(fw.name, { base: [], hook: [], taproot: [] });
for (let round = 0; round < ROUNDS; round++) {
  for (const fw of chosen) {
    const r = results.get(fw.name)!;
    // Alternate the order, so no side always gets the warmer (or quieter) machine.
    const order = round % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const side of order) {
      const mode = side === "base" ? fw.name : `${fw.name}+${side}`;
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
const verdicts: string[] = [];
let acErrors = 0;
/** overheadOf: the median over rounds of `side`'s CPU per request against `than`'s in the same round, in %. */
const overheadOf = (r: Record<Side, Round[]>, side: Side, than: Side) =>
  (median(r[side].map((x, i) => x.cpuPerRequest / r[than][i]!.cpuPerRequest)) - 1) * 100;
const spreadOf = (r: Record<Side, Round[]>, side: Side, than: Side) => {
  const xs = r[side].map((x, i) => (x.cpuPerRequest / r[than][i]!.cpuPerRequest - 1) * 100);
  return `${Math.min(...xs).toFixed(0)}% … ${Math.max(...xs).toFixed(0)}%`;
};
for (const fw of chosen) {
  const r = results.get(fw.name)!;
  acErrors += SIDES.reduce((n, side) => n + r[side].reduce((k, x) => k + x.errors, 0), 0);
  const row = (name: string, side: Side) => {
    const rs = r[side];
    const cells = [
      name,
      Math.round(median(rs.map((x) => x.rps))).toLocaleString("en"),
      `${median(rs.map((x) => x.p99))} ms`,
      `${median(rs.map((x) => x.cpuPerRequest)).toFixed(1)} µs`,
      side === "base" ? "—" : `${overheadOf(r, side, "base").toFixed(1)}%`,
      side === "base" ? "—" : spreadOf(r, side, "base"),
      side === "taproot" ? `${overheadOf(r, "taproot", "hook").toFixed(1)}%` : "—",
    ];
    return `| ${cells.join(" | ")} |`;
  };
  rows.push(row(`${fw.label} alone`, "base"));
  rows.push(row(`${fw.label}, an empty ${fw.hook}`, "hook"));
  rows.push(row(`${fw.label} with taproot`, "taproot"));
  const vsBase = overheadOf(r, "taproot", "base");
  const vsHook = overheadOf(r, "taproot", "hook");
  const hookItself = overheadOf(r, "hook", "base");
  // Judged against the framework alone, unless its own hook mechanism already costs more than the bar.
  const judged = hookItself > BAR ? vsHook : vsBase;
  const against =
    hookItself > BAR
      ? `an empty ${fw.hook} (which costs ${hookItself.toFixed(1)}% itself)`
      : `${fw.label} alone`;
  verdicts.push(`- ${fw.label}: taproot costs ${judged.toFixed(1)}% against ${against}.`);
  if (judged > BAR) failures.push(`${fw.name}: overhead ${judged.toFixed(1)}% > ${BAR}%`);
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
) as Record<"hono" | "connect", { bare: number; taproot: number }>;
const workRows: string[] = [];
for (const [name, what] of [
  ["hono", "contextMiddleware on real node:http objects, beside an empty middleware"],
  [
    "connect",
    "handlerInterceptor + handlerContext and the call's end, beside the bare HandlerContext",
  ],
] as const) {
  const fw = chosen.find((f) => f.name === name);
  const extra = work[name].taproot - work[name].bare;
  const cpu =
    fw === undefined ? undefined : median(results.get(name)!.hook.map((x) => x.cpuPerRequest));
  const share = cpu === undefined ? "—" : `${((extra / 1000 / cpu) * 100).toFixed(1)}%`;
  workRows.push(`| ${name} | ${what} | ${extra.toFixed(0)} ns | ${share} |`);
}

const lines = [
  `# taproot's framework integrations: per-request cost`,
  ``,
  `Node ${process.version}, ${process.platform}/${process.arch}, loopback. Command: \`npm run build && tsx bench/frameworks-load.ts\`.`,
  ``,
  `## A trivial handler, each framework alone and with taproot (autocannon, 50 connections, ${ROUNDS} alternated rounds of ${SECONDS} s)`,
  ``,
  `| server | req/s | p99 latency | server CPU per request | overhead (CPU) vs alone | rounds' spread | overhead (CPU) vs the empty hook |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...rows,
  ``,
  ...verdicts,
  ``,
  `## taproot's own work per request, in-process (bench/frameworks-work.js)`,
  ``,
  `CPU time of the integration's code alone, without sockets, so that other processes disturb it far`,
  `less; the share is of the framework's CPU per request with an empty hook, from the table above.`,
  ``,
  `| framework | what | extra CPU per request | share of a request |`,
  `| --- | --- | ---: | ---: |`,
  ...workRows,
  ``,
  `Medians over the rounds. autocannon errors and non-2xx responses: ${acErrors}. Each server`,
  `runs in its own process; the load generator shares the machine (${cpus().length} CPUs, load`,
  `average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end). Overhead is judged on`,
  `server CPU time per request, paired round by round; the bar is ${BAR} % against the framework`,
  `alone, or against the framework with an empty hook where that hook alone costs more than the bar.`,
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
