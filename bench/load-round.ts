/**
 * One round of an HTTP load test, shared by bench/node-load.ts and
 * bench/frameworks-load.ts: a server in a child process (it sends its port
 * over IPC, then answers "mark", "report" and "stop"), autocannon against it
 * for a warm-up second and then for the round, and the server's own CPU time
 * per request.
 */
import type { ChildProcess } from "node:child_process";
import { createRequire } from "node:module";

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  errors: number;
  non2xx: number;
}

/** What autocannon sends in a round, but for how long. */
export interface LoadRequest {
  url: string;
  connections: number;
  pipelining: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

const autocannon = createRequire(import.meta.url)("autocannon") as (
  opts: LoadRequest & { duration: number },
  cb: (err: Error | null, result: AutocannonResult) => void,
) => unknown;

/** Round is what one round measured. */
export interface Round {
  rps: number;
  p99: number;
  errors: number;
  /** Server CPU time (user + system) per request, in microseconds. */
  cpuPerRequest: number;
}

/** replyFrom waits for the server's next IPC message; it rejects if the server exits first. */
export function replyFrom<T>(server: ChildProcess, label: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    server.once("message", (m) => resolve(m as T));
    server.once("exit", (code) => reject(new Error(`server ${label} exited with ${code}`)));
  });
}

/**
 * loadRound waits for `server`'s port, loads it with what `request` says
 * for one second (warm-up: JIT, sockets, lazy allocations) and then for
 * `seconds`, asks the server for the CPU time it spent since the mark, and
 * stops it.
 */
export async function loadRound(
  server: ChildProcess,
  label: string,
  request: (port: number) => LoadRequest,
  seconds: number,
): Promise<Round> {
  const port = await replyFrom<number>(server, label);
  const run = (duration: number) =>
    new Promise<AutocannonResult>((resolve, reject) =>
      autocannon({ ...request(port), duration }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  await run(1);
  server.send("mark");
  const result = await run(seconds);
  const usage = replyFrom<{ cpuMicros: number; served: number }>(server, label);
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

/** median returns the middle value (the upper one of an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
