/* global process, URL */
/**
 * The client of bench/rpc-load.ts, in a process of its own so that its CPU
 * time is its own: unary calls to Echo.say, CONCURRENCY in flight, with
 * grpc-js alone (`raw`: `client.say(request, { deadline }, callback)`) or
 * through taproot-context/grpc (`context`: `unaryCall(ctx, client, "say",
 * request)`, which adds callOptions' deadline and bindCall's cancellation),
 * a round at a time, in one process for the reason bench/rpc-load-server.js
 * gives.
 * Both carry the same deadline: in `context` mode it is the deadline of a
 * context made once per round, as a handler's request context would be, so
 * the figure is the bridge's own cost and not the user's withTimeout.
 * Plain JavaScript on the built package (dist/), run by plain node.
 *
 * Over IPC: "ready" once up, then { round: { port, seconds, mode } } answers the
 * CPU time in µs, the calls made and the failures; { start: { port, mode } }
 * starts calling until "halt" ("started", "halted"), while "mark" ("marked")
 * and "report" (CPU time, calls and failures since the mark) cut windows;
 * the profile commands of bench/server-profile.js; and "stop".
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { background, withTimeout } from "../dist/index.js";
import { unaryCall } from "../dist/grpc/index.js";
import { answerProfile } from "./server-profile.js";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const CONCURRENCY = 32;
const proto = fileURLToPath(new URL("../test/grpc/fixtures/echo.proto", import.meta.url));
const Echo = grpc.loadPackageDefinition(protoLoader.loadSync(proto)).taproot.test.Echo;
/** One client per server port, made on first use and kept. */
const clients = new Map();
const request = { text: "x" };

function clientFor(port) {
  let c = clients.get(port);
  if (c === undefined) {
    c = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    clients.set(port, c);
  }
  return c;
}

/**
 * callOf returns one unary call on the server at `port` under `ctx`'s
 * deadline: raw grpc-js with the deadline as a call option ("raw"), or
 * taproot's unaryCall ("context").
 */
function callOf(port, mode, ctx) {
  if (mode !== "raw" && mode !== "context")
    throw new Error(`rpc-load-client: unknown mode ${mode}`);
  const client = clientFor(port);
  if (mode === "context") return () => unaryCall(ctx, client, "say", request);
  const options = { deadline: ctx.deadline() };
  return () =>
    new Promise((resolve, reject) =>
      client.say(request, options, (err, res) => (err ? reject(err) : resolve(res))),
    );
}

async function round(port, seconds, mode) {
  const [ctx, cancel] = withTimeout(background(), 60_000);
  const call = callOf(port, mode, ctx);
  let calls = 0;
  let errors = 0;
  const t0 = process.cpuUsage();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        try {
          await call();
          calls++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const cpu = process.cpuUsage(t0);
  cancel();
  return { cpuMicros: cpu.user + cpu.system, calls, errors };
}

/** The started load; settles once halted. */
let running = Promise.resolve();
/** The calls made and failed so far by a started load; counted from the start. */
const counts = { calls: 0, errors: 0 };
let mark = { cpu: process.cpuUsage(), calls: 0, errors: 0 };
/** Set by "halt": the started load's lanes stop after their call in flight. */
let halted = true;

async function startLoad(port, mode) {
  const [ctx, cancel] = withTimeout(background(), 3_600_000);
  const call = callOf(port, mode, ctx);
  halted = false;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!halted) {
        try {
          await call();
          counts.calls++;
        } catch {
          counts.errors++;
        }
      }
    }),
  );
  cancel();
}

process.on("message", (msg) => {
  if (answerProfile(msg)) return;
  if (msg === "mark") {
    mark = { cpu: process.cpuUsage(), ...counts };
    process.send?.("marked");
  } else if (msg === "report") {
    const cpu = process.cpuUsage(mark.cpu);
    process.send?.({
      cpuMicros: cpu.user + cpu.system,
      calls: counts.calls - mark.calls,
      errors: counts.errors - mark.errors,
    });
  } else if (msg === "halt") {
    halted = true;
    void running.then(() => process.send?.("halted"));
  } else if (msg !== null && typeof msg === "object" && "start" in msg) {
    running = startLoad(msg.start.port, msg.start.mode);
    process.send?.("started");
  } else if (msg === "stop") {
    for (const c of clients.values()) c.close();
    process.exit(0);
  } else if (msg !== null && typeof msg === "object" && "round" in msg) {
    void round(msg.round.port, msg.round.seconds, msg.round.mode).then((r) => process.send?.(r));
  }
});
process.send?.("ready");
