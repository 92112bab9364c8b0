/**
 * Per-call cost of taproot-context/grpc beside grpc-js without it
 * (`tsx bench/rpc-load.ts`, after `npm run build`; part of `npm run bench:node`).
 *
 * Six processes, plain node on dist/, all loaded at once:
 * three servers (bench/rpc-load-server.js) and three clients
 * (bench/rpc-load-client.js), 32 calls in flight each:
 *
 * - client A, grpc-js's own call with a deadline → server P1, a plain grpc-js handler;
 * - client B, the same → server B1, the same handler through `handleUnary`,
 *   which reads its context;
 * - client D, `unaryCall(ctx, …)` under a context with the same deadline →
 *   server P2, plain.
 *
 * Method (as bench/frameworks-load.ts, bench/paired-rounds.ts): GENERATIONS
 * (default 6) times, the six processes are started anew, warmed up for 4 s,
 * and cut into ROUNDS (default 15) windows of SECONDS (default 1 s) in every
 * process at the same moment; in each, CPU time per call of B1 over P1 (the
 * server side), of D over A (the client side), and of P2 over P1 (two plain
 * servers: what the method reads where there is no difference). The
 * verdict is the median over generations of each one's median paired
 * ratio; the interquartile range of all ratios is printed beside it. Then
 * the last generation's B1 and D are profiled under load, alone, for 2 s
 * each (share of CPU in taproot's dist/ frames).
 * The bar: at most 3 % CPU per call on either side. The exit code is 1 if a
 * bar fails or a call failed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ask, formatSummary, quantile, replyFrom, stopChild, summarize } from "./paired-rounds.js";
import { profileShare, type ProfileShare } from "./profile-share.js";

/** Fresh sets of the six processes: each set reads its own few percent, for its life (see node-load.ts). */
const GENERATIONS = Number(process.env.GENERATIONS ?? 6);
const WINDOWS = Number(process.env.ROUNDS ?? 15);
const SECONDS = Number(process.env.SECONDS ?? 1);
const PROFILE_SECONDS = 2;
const BAR = 3;
const loadAtStart = loadavg()[0]!;
const started = Date.now();

function start(script: string, mode?: string): ChildProcess {
  const args = [
    fileURLToPath(new URL(script, import.meta.url)),
    ...(mode === undefined ? [] : [mode]),
  ];
  return spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

interface Usage {
  cpuMicros: number;
  /** Calls served (a server) or made (a client) since the mark. */
  served?: number;
  calls?: number;
  errors?: number;
}

const after = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
const med = (xs: number[]) => quantile(xs, 0.5);
const children: ChildProcess[] = [];
type Ports = { plain?: number; bridged?: number };
/** One generation: the six processes, started anew, with their ports. */
interface Generation {
  servers: { P1: ChildProcess; B1: ChildProcess; P2: ChildProcess };
  clients: { A: ChildProcess; B: ChildProcess; D: ChildProcess };
  ports: { p1: number; b1: number; p2: number };
}

async function startGeneration(): Promise<Generation> {
  const servers = {
    P1: start("./rpc-load-server.js", "plain"),
    B1: start("./rpc-load-server.js", "bridged"),
    P2: start("./rpc-load-server.js", "plain"),
  };
  const clients = {
    A: start("./rpc-load-client.js"),
    B: start("./rpc-load-client.js"),
    D: start("./rpc-load-client.js"),
  };
  children.push(...Object.values(servers), ...Object.values(clients));
  const ports = {
    p1: (await replyFrom<Ports>(servers.P1, "P1")).plain!,
    b1: (await replyFrom<Ports>(servers.B1, "B1")).bridged!,
    p2: (await replyFrom<Ports>(servers.P2, "P2")).plain!,
  };
  for (const [name, c] of Object.entries(clients)) await replyFrom(c, name);
  return { servers, clients, ports };
}

async function stopGeneration(g: Generation): Promise<void> {
  for (const c of [...Object.values(g.servers), ...Object.values(g.clients)]) {
    await stopChild(c).catch(() => c.kill());
    children.splice(children.indexOf(c), 1);
  }
}

try {
  const usage = new Map<string, Usage[]>(
    ["P1", "B1", "P2", "A", "B", "D"].map((name) => [name, []]),
  );
  /** Each generation's median paired ratio (percent over grpc-js alone), per side and for the A/A pair. */
  const generationMedians = {
    server: [] as number[],
    client: [] as number[],
    null: [] as number[],
  };
  const perServed = (us: Usage[]) => us.map((u) => u.cpuMicros / u.served!);
  const perCall = (us: Usage[]) => us.map((u) => u.cpuMicros / u.calls!);
  const ratios = (of: number[], than: number[]) => of.map((x, k) => x / than[k]!);
  const percentOver = (rs: number[]) => (med(rs) - 1) * 100;
  const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)} %`;
  console.log(
    `rpc: ${GENERATIONS} generations of fresh processes × ${WINDOWS} windows of ${SECONDS} s, the six processes loaded at once…`,
  );
  let g: Generation | undefined;
  for (let generation = 0; generation < GENERATIONS; generation++) {
    g = await startGeneration();
    const { servers, clients, ports } = g;
    const loads = [
      [clients.A, ports.p1, "raw"],
      [clients.B, ports.b1, "raw"],
      [clients.D, ports.p2, "context"],
    ] as const;
    const all = Object.entries({ ...servers, ...clients });
    for (const [c, port, mode] of loads) await ask(c, "client", { start: { port, mode } });
    // Warm-up: grpc-js takes thousands of calls to reach its steady state.
    await after(4);
    const mine = new Map<string, Usage[]>(all.map(([name]) => [name, []]));
    for (let w = 0; w < WINDOWS; w++) {
      await Promise.all(all.map(([name, c]) => ask(c, name, "mark")));
      await after(SECONDS);
      const reports = await Promise.all(all.map(([name, c]) => ask<Usage>(c, name, "report")));
      all.forEach(([name], k) => mine.get(name)!.push(reports[k]!));
    }
    for (const [c] of loads) await ask(c, "client", "halt");
    for (const [name, us] of mine) usage.get(name)!.push(...us);
    const at = (name: string) => mine.get(name)!;
    generationMedians.server.push(percentOver(ratios(perServed(at("B1")), perServed(at("P1")))));
    generationMedians.client.push(percentOver(ratios(perCall(at("D")), perCall(at("A")))));
    generationMedians.null.push(percentOver(ratios(perServed(at("P2")), perServed(at("P1")))));
    console.log(
      `  generation ${generation + 1}: server ${signed(generationMedians.server.at(-1)!)}, client ${signed(generationMedians.client.at(-1)!)}, A/A ${signed(generationMedians.null.at(-1)!)}`,
    );
    // The last generation stays up for the profiles.
    if (generation < GENERATIONS - 1) await stopGeneration(g);
  }
  const { servers, clients, ports } = g!;
  const errors = ["A", "B", "D"].reduce(
    (n, name) => n + usage.get(name)!.reduce((k, u) => k + (u.errors ?? 0), 0),
    0,
  );

  /** profile loads `port` from `client` alone for PROFILE_SECONDS with V8's profiler on in `profiled`. */
  const profile = async (
    profiled: ChildProcess,
    client: ChildProcess,
    port: number,
    mode: "raw" | "context",
  ): Promise<ProfileShare> => {
    const dir = mkdtempSync(join(tmpdir(), "taproot-prof-"));
    try {
      await ask(profiled, "profiled", "profile-start");
      await ask(client, "client", { round: { port, seconds: PROFILE_SECONDS, mode } });
      const path = await ask<string>(profiled, "profiled", {
        "profile-stop": join(dir, "rpc.cpuprofile"),
      });
      return profileShare(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const serverSide = "server: handleUnary";
  const clientSide = "client: unaryCall";
  const profiles = {
    [serverSide]: await profile(servers.B1, clients.B, ports.b1, "raw"),
    [clientSide]: await profile(clients.D, clients.D, ports.p2, "context"),
  };
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)} … ${Math.max(...xs).toFixed(1)} %`;

  const rows: string[] = [];
  const failures: string[] = [];
  for (const [name, plain, bridged, generations] of [
    [
      serverSide,
      perServed(usage.get("P1")!),
      perServed(usage.get("B1")!),
      generationMedians.server,
    ],
    [clientSide, perCall(usage.get("A")!), perCall(usage.get("D")!), generationMedians.client],
  ] as const) {
    const s = summarize(ratios(bridged, plain));
    const prof = profiles[name];
    const cpu = med(bridged);
    const verdict = med(generations);
    const ok = verdict <= BAR;
    if (!ok) failures.push(`${name}: ${verdict.toFixed(1)} % > ${BAR} %`);
    rows.push(
      `| ${name} | ${med(plain).toFixed(1)} µs | ${cpu.toFixed(1)} µs | ${verdict.toFixed(1)} % (${range(generations)}) | ${formatSummary(s)} | ${(prof.taproot * 100).toFixed(1)} % (${Math.round(prof.taproot * cpu * 1000)} ns), GC ${(prof.gc * 100).toFixed(1)} % | ${ok ? "pass" : "FAIL"} (≤ ${BAR} %) |`,
    );
  }
  const nullCheck = summarize(ratios(perServed(usage.get("P2")!), perServed(usage.get("P1")!)));
  const tops = Object.entries(profiles).map(
    ([name, prof]) =>
      `- ${name}, heaviest taproot functions: ${prof.top.map((t) => `${t.name} ${(t.share * 100).toFixed(1)} %`).join("; ")}`,
  );
  const rate = med(usage.get("A")!.map((u) => u.calls! / SECONDS));
  const nullVerdict = med(generationMedians.null);
  console.log(
    [
      ``,
      `# taproot-context/grpc: per-call cost`,
      ``,
      `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, Node ${process.version}, ${cpus().length} CPUs, loopback, 32 unary calls in flight per client, ${Math.round(rate).toLocaleString("en")} calls/s per client. Command: \`npm run build && tsx bench/rpc-load.ts\` (${((Date.now() - started) / 60_000).toFixed(1)} min; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end).`,
      ``,
      `| side | grpc-js alone (CPU/call) | with taproot-context/grpc | overhead: median of the ${GENERATIONS} generations' medians (lowest … highest) | all paired ratios: median (IQR), ${GENERATIONS} × ${WINDOWS} windows of ${SECONDS} s | profile: taproot's share | bar |`,
      `| --- | ---: | ---: | ---: | ---: | ---: | --- |`,
      ...rows,
      ``,
      `Two plain servers side by side (P2 over P1, no difference to find): ${nullVerdict.toFixed(1)} % (generations ${range(generationMedians.null)}); all windows ${formatSummary(nullCheck)}.`,
      ``,
      ...tops,
      ``,
      `Failed calls: ${errors}.`,
    ].join("\n"),
  );
  if (errors > 0) failures.push(`${errors} failed calls`);
  if (failures.length > 0) {
    console.error(`FAIL: ${failures.join("; ")}`);
    process.exitCode = 1;
  }
} finally {
  for (const c of children) await stopChild(c).catch(() => c.kill());
}
