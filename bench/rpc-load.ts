/**
 * Per-call cost of taproot-context/grpc beside grpc-js without it
 * (`tsx bench/rpc-load.ts`, after `npm run build`; part of `npm run bench:node`).
 *
 * Two processes, plain node on dist/, up for the whole run: the servers
 * (bench/rpc-load-server.js: a plain grpc-js unary handler on one port, the
 * same through `handleUnary`, whose handler reads its context, on another)
 * and the client (bench/rpc-load-client.js: grpc-js's own call with a
 * deadline, or `unaryCall(ctx, …)` under a context with the same deadline),
 * 32 calls in flight, one kind of call at a time. Each process's CPU time
 * per call is its own; both kinds share the process, so grpc-js's code is
 * warmed by both alike.
 *
 * - the baseline round: the plain client against the plain server, which
 *   gives both the server's and the client's CPU per call;
 * - the server contender: the plain client against the `handleUnary` server;
 * - the client contender: the `unaryCall` client against the plain server.
 *
 * Method (bench/paired-rounds.ts): short rounds (SECONDS, default 0.4 s),
 * baseline and contenders strictly alternated, each contender's round
 * divided by the mean of the baseline rounds on either side, the median of
 * ROUNDS (default 60) ratios kept with its interquartile range; then each
 * contender's process is profiled for 2 s under the same load (share of its
 * CPU in taproot's dist/ frames). The bar: at most 3 % CPU per call on
 * either side. The exit code is 1 if a bar fails or a call failed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ask,
  formatSummary,
  pairedRounds,
  quantile,
  replyFrom,
  stopChild,
  summarize,
  type Measured,
} from "./paired-rounds.js";
import { profileShare, type ProfileShare } from "./profile-share.js";

const CYCLES = Number(process.env.ROUNDS ?? 60);
const SECONDS = Number(process.env.SECONDS ?? 0.4);
const PROFILE_SECONDS = 2;
const BAR = 3;
const loadAtStart = loadavg()[0]!;
const started = Date.now();

function start(script: string): ChildProcess {
  return spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

interface ClientRound {
  cpuMicros: number;
  calls: number;
  errors: number;
}

const children: ChildProcess[] = [];
try {
  const server = start("./rpc-load-server.js");
  const client = start("./rpc-load-client.js");
  children.push(server, client);
  const ports = await replyFrom<{ plain: number; bridged: number }>(server, "server");
  await replyFrom(client, "client");

  /** One round: the client calls `port` its `mode`'s way for `seconds`; both processes' CPU per call. */
  const round = async (
    mode: "raw" | "context",
    port: number,
    seconds = SECONDS,
  ): Promise<Measured> => {
    await ask(server, "server", "mark");
    const c = await ask<ClientRound>(client, "client", { round: { port, seconds, mode } });
    const s = await ask<{ cpuMicros: number; served: number }>(server, "server", "report");
    return {
      cpu: s.cpuMicros / s.served,
      clientCpu: c.cpuMicros / c.calls,
      rate: c.calls / seconds,
      errors: c.errors,
    };
  };

  // Warm-up: JIT and connections, every pairing, before any round counts.
  // grpc-js takes thousands of calls to reach its steady state.
  for (let i = 0; i < 3; i++) {
    await round("raw", ports.plain, 1);
    await round("raw", ports.bridged, 1);
    await round("context", ports.plain, 1);
  }

  console.log(
    `rpc: ${CYCLES} paired rounds of ${SECONDS} s per contender, strictly alternated with grpc-js alone…`,
  );
  const serverSide = "server: handleUnary";
  const clientSide = "client: unaryCall";
  const { base, paired } = await pairedRounds(
    { name: "grpc-js alone", round: () => round("raw", ports.plain) },
    [
      { name: serverSide, round: () => round("raw", ports.bridged) },
      {
        name: clientSide,
        round: () => round("context", ports.plain),
        metric: (m) => m.clientCpu!,
      },
    ],
    CYCLES,
    process.env.VERBOSE
      ? (name, m) =>
          console.log(
            `  ${name}: server ${m.cpu.toFixed(1)} µs/call, client ${m.clientCpu!.toFixed(1)} µs/call, ${Math.round(m.rate)} calls/s`,
          )
      : undefined,
  );

  /** profile makes `mode`'s calls to `port` for PROFILE_SECONDS with V8's profiler on in `profiled`. */
  const profile = async (
    profiled: ChildProcess,
    mode: "raw" | "context",
    port: number,
  ): Promise<ProfileShare> => {
    const dir = mkdtempSync(join(tmpdir(), "taproot-prof-"));
    try {
      await ask(profiled, "profiled", "profile-start");
      await round(mode, port, PROFILE_SECONDS);
      const path = await ask<string>(profiled, "profiled", {
        "profile-stop": join(dir, "rpc.cpuprofile"),
      });
      return profileShare(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const profiles = {
    [serverSide]: await profile(server, "raw", ports.bridged),
    [clientSide]: await profile(client, "context", ports.plain),
  };

  const med = (xs: number[]) => quantile(xs, 0.5);
  const errors = [...base, ...[...paired.values()].flatMap((p) => p.rounds)].reduce(
    (n, m) => n + m.errors,
    0,
  );
  const rows: string[] = [];
  const failures: string[] = [];
  for (const [name, metric] of [
    [serverSide, (m: Measured) => m.cpu],
    [clientSide, (m: Measured) => m.clientCpu!],
  ] as const) {
    const p = paired.get(name)!;
    const s = summarize(p.ratios);
    const prof = profiles[name];
    const cpu = med(p.rounds.map(metric));
    const ok = s.median <= BAR;
    if (!ok) failures.push(`${name}: ${s.median.toFixed(1)} % > ${BAR} %`);
    rows.push(
      `| ${name} | ${med(base.map(metric)).toFixed(1)} µs | ${cpu.toFixed(1)} µs | ${formatSummary(s)} | ${(prof.taproot * 100).toFixed(1)} % (${Math.round(prof.taproot * cpu * 1000)} ns), GC ${(prof.gc * 100).toFixed(1)} % | ${ok ? "pass" : "FAIL"} (≤ ${BAR} %) |`,
    );
  }
  const tops = Object.entries(profiles).map(
    ([name, prof]) =>
      `- ${name}, heaviest taproot functions: ${prof.top.map((t) => `${t.name} ${(t.share * 100).toFixed(1)} %`).join("; ")}`,
  );
  console.log(
    [
      ``,
      `# taproot-context/grpc: per-call cost`,
      ``,
      `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, Node ${process.version}, ${cpus().length} CPUs, loopback, 32 unary calls in flight, ${Math.round(med(base.map((m) => m.rate))).toLocaleString("en")} calls/s alone. Command: \`npm run build && tsx bench/rpc-load.ts\` (${((Date.now() - started) / 60_000).toFixed(1)} min; load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end).`,
      ``,
      `| side | grpc-js alone (CPU/call) | with taproot-context/grpc | paired ratios: median (IQR), ${CYCLES} rounds of ${SECONDS} s | profile: taproot's share | bar |`,
      `| --- | ---: | ---: | ---: | ---: | --- |`,
      ...rows,
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
