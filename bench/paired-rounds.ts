/**
 * Paired measurements, for bench/frameworks-load.ts and bench/rpc-load.ts:
 * the way to read a few percent of CPU per request on a small, busy machine.
 *
 * Every contender is a server (or client) process that stays up for the
 * whole run, and all of them are loaded at the same time; the run is cut
 * into short windows (1 s) at the same moment in every process, and in each
 * window a contender's CPU time per request is divided by its baseline's:
 * whatever the rest of the machine did during that second hit both alike.
 * The median of these ratios and their interquartile range are what the
 * benches print. The first form tried, rounds of one contender at a time
 * strictly alternated with baseline rounds (each paired with the mean of
 * the baseline rounds on either side), read two identical Fastify servers
 * +5 % apart (IQR -6 … +13) on this project's shared 2-core VM: a process
 * idle while the others ran came back with cold caches, and the baseline,
 * loaded twice as often, idled least. Loaded at once, the same two read
 * -0.4 % (IQR -2.1 … +1.2).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/** Measured is what one round of one contender measured. */
export interface Measured {
  /** CPU time (user + system) per request of the process under test, in microseconds. */
  cpu: number;
  /** Requests (or calls) per second. */
  rate: number;
  /** Failed requests: transport errors and non-2xx answers. */
  errors: number;
}

/** quantile returns the `q` quantile of `xs` (0.5: the median), interpolating between ranks. */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

/** median is the middle of `xs`, the mean of the two middle values for an even count. */
export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

/** Summary is the median of paired ratios as a percentage over the baseline, with its quartiles. */
export interface Summary {
  median: number;
  q1: number;
  q3: number;
}

/** summarize turns ratios (1.02 = 2 % more) into percentages: median and interquartile range. */
export function summarize(ratios: number[]): Summary {
  const pct = (x: number) => (x - 1) * 100;
  return {
    median: pct(quantile(ratios, 0.5)),
    q1: pct(quantile(ratios, 0.25)),
    q3: pct(quantile(ratios, 0.75)),
  };
}

/** formatSummary prints a summary as "+1.2 % (IQR +0.4 … +2.0)". */
export function formatSummary(s: Summary): string {
  const f = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;
  return `${f(s.median)} % (IQR ${f(s.q1)} … ${f(s.q3)})`;
}

/** replyFrom waits for the process's next IPC message; it rejects if the process exits first. */
export function replyFrom<T>(child: ChildProcess, label: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null) => {
      child.off("message", onMessage);
      reject(new Error(`${label} exited with ${code}`));
    };
    const onMessage = (m: unknown) => {
      child.off("exit", onExit);
      resolve(m as T);
    };
    child.once("message", onMessage);
    child.once("exit", onExit);
  });
}

/** ask sends `message` to the process and waits for its answer. */
export function ask<T>(child: ChildProcess, label: string, message: unknown): Promise<T> {
  const reply = replyFrom<T>(child, label);
  child.send(message as object);
  return reply;
}

/**
 * requireCommand stops the bench at once, with what to install, when a
 * system tool it drives (valgrind, perf) is not on the PATH: `script` names
 * the bench, `debianPackage` the package that has `command`, and `purpose`
 * what the bench needs it for.
 */
export function requireCommand(
  script: string,
  command: string,
  debianPackage: string,
  purpose: string,
): void {
  try {
    execFileSync(command, ["--version"], { stdio: "ignore" });
  } catch {
    console.error(
      `${script}: ${command} is not installed; install it (apt-get install ${debianPackage}) to ${purpose}`,
    );
    process.exit(1);
  }
}

/** stopChild asks a server process to stop and waits until it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.send("stop");
  await exited;
}

/** What autocannon sends in a round, but for how long. */
export interface HttpLoad {
  /** One URL, or several: autocannon gives connection i the URL i % url.length. */
  url: string | string[];
  connections: number;
  pipelining?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

interface AutocannonResult {
  requests: { average: number; total: number };
  duration: number;
  errors: number;
  non2xx: number;
}

const autocannon = createRequire(import.meta.url)("autocannon") as (
  opts: HttpLoad & { duration: number; sampleInt: number },
  cb: (err: Error | null, result: AutocannonResult) => void,
) => unknown;

/**
 * loadHttp runs autocannon against `load.url` for `seconds` (fractions
 * allowed). autocannon only stops at one of its sampling ticks, every
 * second by default, which would stretch a 0.4 s round to a whole second:
 * it samples every 50 ms here.
 */
export function loadHttp(load: HttpLoad, seconds: number): Promise<AutocannonResult> {
  return new Promise((resolve, reject) =>
    autocannon({ ...load, duration: seconds, sampleInt: 50 }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** A server process under test, as bench/frameworks-load-server.js runs one. */
export interface LoadedServer {
  name: string;
  child: ChildProcess;
  port: number;
}

/**
 * startLoadedServer starts a server process (bench/frameworks-load-server.js
 * and its kind) and hands it its mode over IPC; resolves once it answers
 * with its port. The mode goes over IPC, not on the command line, so every
 * mode runs with the same arguments: their size moves a process's stack
 * alignment, and with it its speed. `nodeArgs` go to node before the script
 * (the same for every mode). The server's stdout goes to this process's, or
 * nowhere with `quiet`, or line by line to `onStdoutLine` from the moment it
 * starts (for V8's GC traces: a pipe nobody read would fill and stall the
 * server before it could answer).
 */
export async function startLoadedServer(
  script: URL,
  mode: string,
  options: { nodeArgs?: string[]; quiet?: boolean; onStdoutLine?: (line: string) => void } = {},
): Promise<LoadedServer> {
  const { onStdoutLine } = options;
  const stdout =
    onStdoutLine !== undefined ? "pipe" : options.quiet === true ? "ignore" : "inherit";
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), fileURLToPath(script)], {
    stdio: ["ignore", stdout, "inherit", "ipc"],
  });
  if (onStdoutLine !== undefined) {
    let partial = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) onStdoutLine(line);
    });
  }
  return { name: mode, child, port: await ask<number>(child, mode, mode) };
}

/**
 * serverScriptOf returns the server script of a mode: bench/frameworks-load-server.js
 * for a GET route of Fastify or Hono (`fastify`, `hono+taproot`, …),
 * bench/node-load-server.js for the others (`plain`, `serve`, …).
 */
export function serverScriptOf(mode: string): URL {
  return new URL(
    /^(fastify|hono)(\+|$)/.test(mode) ? "./frameworks-load-server.js" : "./node-load-server.js",
    import.meta.url,
  );
}

/**
 * concurrentWindows loads every server at once, one autocannon spreading
 * `perServer` connections to each, for `windows` windows of `seconds`, and
 * returns each server's CPU time per request in each window (by name). The
 * servers answer "mark" and "report" over IPC; the windows are cut while
 * the load runs, so no connection opens or closes inside one.
 *
 * Measured at the same moment, a contender and its baseline see the same
 * machine: a burst of another process's work, a neighbour on the same
 * physical core, slows both alike.
 */
export async function concurrentWindows(
  servers: LoadedServer[],
  load: Omit<HttpLoad, "url" | "connections"> & { path: string },
  perServer: number,
  windows: number,
  seconds: number,
): Promise<Map<string, Measured[]>> {
  const { path, ...rest } = load;
  const url = servers.map((s) => `http://127.0.0.1:${s.port}${path}`);
  const all = (message: string) =>
    Promise.all(
      servers.map((s) =>
        ask<{ cpuMicros: number; served: number } | string>(s.child, s.name, message),
      ),
    );
  const after = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
  const out = new Map<string, Measured[]>(servers.map((s) => [s.name, []]));
  // autocannon gives connection i the URL i % url.length: perServer each.
  const loading = loadHttp(
    { ...rest, url, connections: perServer * servers.length },
    windows * seconds + 1,
  );
  await after(0.3);
  await all("mark");
  let t0 = performance.now();
  for (let w = 0; w < windows; w++) {
    await after(seconds);
    const reports = await all("report");
    await all("mark");
    const elapsed = (performance.now() - t0) / 1000;
    t0 = performance.now();
    servers.forEach((s, i) => {
      const r = reports[i] as { cpuMicros: number; served: number };
      out.get(s.name)!.push({ cpu: r.cpuMicros / r.served, rate: r.served / elapsed, errors: 0 });
    });
  }
  const result = await loading;
  // Failures are counted for the whole run; the first window carries them.
  const first = out.get(servers[0]!.name)![0];
  if (first !== undefined) first.errors = result.errors + result.non2xx;
  return out;
}
