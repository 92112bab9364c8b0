/**
 * Per-call cost of taproot-context/grpc beside grpc-js without it
 * (`tsx bench/rpc-load.ts`, to be chained into `npm run bench:node`).
 *
 * Server side: the same unary method served plainly and through
 * handleUnary (callContext per call), both in one child process; rounds of
 * calls alternate between the two, and the child's CPU time per call is
 * read around each round. Client side: in this process, rounds alternate
 * between grpc-js's own client call and unaryCall (callOptions + bindCall
 * under a context with a deadline), against the plain server. Medians of
 * the rounds are compared; the bridge must cost at most 3 % CPU per call.
 * Every call has a 10 s deadline on both paths (grpc-js's own deadline
 * option, or the context's through callOptions), so the figures compare
 * the bridge and not grpc-js's deadline handling.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { background, withTimeout } from "../src/index.js";
import { unaryCall } from "../src/grpc/index.js";

const ROUNDS = Number(process.env.RPC_ROUNDS ?? 12);
const CALLS = Number(process.env.RPC_CALLS ?? 2_000);
const CONCURRENCY = 32;
const BAR = 0.03;

interface Message {
  text: string;
}
type Say = (m: Message, o: grpc.CallOptions, cb: (e: Error | null, r?: Message) => void) => void;

const root = fileURLToPath(new URL("..", import.meta.url));
const child = spawn(process.execPath, ["--import", "tsx", "bench/rpc-load-server.ts"], {
  cwd: root,
  stdio: ["pipe", "pipe", "inherit"],
});
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
async function nextJson<T>(): Promise<T> {
  const { value, done } = await lines.next();
  if (done) throw new Error("rpc-load: the server process ended early");
  return JSON.parse(value as string) as T;
}
async function serverCpu(): Promise<number> {
  child.stdin!.write("cpu\n");
  return (await nextJson<{ cpu: number }>()).cpu;
}

const ports = await nextJson<{ plain: number; bridged: number }>();
const proto = fileURLToPath(new URL("../test/grpc/fixtures/echo.proto", import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Echo = (grpc.loadPackageDefinition(protoLoader.loadSync(proto)) as any).taproot.test
  .Echo as grpc.ServiceClientConstructor;
const plainClient = new Echo(`127.0.0.1:${ports.plain}`, grpc.credentials.createInsecure());
const bridgedClient = new Echo(`127.0.0.1:${ports.bridged}`, grpc.credentials.createInsecure());

/** The four ways of making one call. */
const raw = (client: grpc.Client) => (): Promise<unknown> =>
  new Promise((resolve, reject) =>
    (client as unknown as { say: Say }).say(
      { text: "x" },
      { deadline: Date.now() + 10_000 },
      (e, r) => (e ? reject(e) : resolve(r)),
    ),
  );
const withContext = (client: grpc.Client) => async (): Promise<unknown> => {
  const [ctx, cancel] = withTimeout(background(), 10_000);
  try {
    return await unaryCall(ctx, client, "say", { text: "x" });
  } finally {
    cancel();
  }
};

/** round makes CALLS calls, CONCURRENCY at a time, and returns the CPU µs per call of the server and of this process. */
async function round(call: () => Promise<unknown>): Promise<{ server: number; client: number }> {
  const s0 = await serverCpu();
  const c0 = process.cpuUsage();
  let left = CALLS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) await call();
    }),
  );
  const c = process.cpuUsage(c0);
  const s1 = await serverCpu();
  return { server: (s1 - s0) / CALLS, client: (c.user + c.system) / CALLS };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};

// Warm-up: JIT both paths on both sides.
for (const f of [raw(plainClient), raw(bridgedClient), withContext(plainClient)]) await round(f);

const serverPlain: number[] = [];
const serverBridged: number[] = [];
const clientPlain: number[] = [];
const clientBridged: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  // Alternate the order within each pair so drift hits both alike.
  const pair = r % 2 === 0 ? [0, 1] : [1, 0];
  for (const which of pair) {
    if (which === 0) serverPlain.push((await round(raw(plainClient))).server);
    else serverBridged.push((await round(raw(bridgedClient))).server);
  }
  for (const which of pair) {
    if (which === 0) clientPlain.push((await round(raw(plainClient))).client);
    else clientBridged.push((await round(withContext(plainClient))).client);
  }
}
child.kill();
plainClient.close();
bridgedClient.close();

const rows = [
  ["server: handler", median(serverPlain), median(serverBridged)],
  ["client: call", median(clientPlain), median(clientBridged)],
] as const;
console.log(`rpc-load: ${ROUNDS} rounds x ${CALLS} unary calls, ${CONCURRENCY} in flight, medians`);
console.log("| side | grpc-js alone (µs CPU/call) | with taproot-context/grpc | ratio | bar |");
console.log("| --- | ---: | ---: | ---: | --- |");
let failed = false;
for (const [name, plain, bridged] of rows) {
  const ratio = bridged / plain;
  const ok = ratio <= 1 + BAR;
  failed ||= !ok;
  console.log(
    `| ${name} | ${plain.toFixed(1)} | ${bridged.toFixed(1)} | ${ratio.toFixed(3)} | ${ok ? "pass" : "FAIL"} (≤ ${1 + BAR}) |`,
  );
}
if (failed) process.exitCode = 1;
