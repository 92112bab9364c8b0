/* global process */
/**
 * The server half of bench/node-load.ts, in its own process so the load
 * generator does not share its CPU. `mode` is "plain" (node:http alone),
 * "requestContext+timeout" (node:http calling requestContext with a 5 s
 * timeout), "serve" (the taproot/node wrapper) or "serve+timeout" (with a
 * 5 s per-request deadline). Driven over IPC: its first message is the
 * mode, which it answers with its port; then it answers each message once
 * it is done:
 * - "mark", "report", "profile-start" and `{ "profile-stop": file }` as
 *   bench/server-profile.js answers them (CPU time with its user part,
 *   requests since the mark; V8's sampling profiler);
 * - "stop" by exiting.
 *
 * Plain JavaScript on the built package, run by plain `node`: the figures
 * are those of the code users run, without a TypeScript loader in the
 * process (under tsx, the same wrapper measured several times slower).
 */
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { answerProfile, cpuMeter } from "./server-profile.js";

const kFloor = Symbol("floor");
function onFloorClose() {
  this.req[kFloor].closed = true;
}
/** createFor makes the server of one mode, with `requestContext` and `serve` from the build it is given. */
function createFor(mode, { requestContext, serve }) {
  return mode === "plain" || mode === "plain-again"
    ? createServer((_req, res) => res.end("ok"))
    : mode === "property"
      ? createServer((req, res) => {
          // One property on the request and nothing else: what storing a context on it costs.
          req[kFloor] = res;
          res.end("ok");
        })
      : mode === "floor"
        ? createServer((req, res) => {
            // What any request layer needs, and nothing else: one property on
            // the request and one close listener on its response.
            req[kFloor] = { closed: false };
            res.on("close", onFloorClose);
            res.end("ok");
          })
        : mode === "requestContext+timeout"
          ? createServer((req, res) => {
              // The README's own example: the options object is written inline, a new one per request.
              requestContext(req, res, { timeout: 5_000 });
              res.end("ok");
            })
          : serve((_ctx, _req, res) => void res.end("ok"), {
              timeout: mode === "serve+timeout" ? 5_000 : undefined,
            }).server;
}
/**
 * The mode comes in the first IPC message, not on the command line: every
 * server process then starts with the same arguments and environment, whose
 * size alone moves the stack's alignment and can shift a process's speed
 * by a few percent for its whole life.
 */
const asked = await new Promise((resolve) => process.once("message", resolve));
/**
 * A mode written `before:<mode>` runs <mode> on the earlier build whose
 * dist/ directory TAPROOT_BENCH_BEFORE names (as `npm run bench` does), so
 * that two builds are measured in one run.
 */
const before = asked.startsWith("before:");
const mode = before ? asked.slice("before:".length) : asked;
if (before && process.env.TAPROOT_BENCH_BEFORE === undefined) {
  throw new Error(`mode ${asked}: set TAPROOT_BENCH_BEFORE to the earlier build's dist directory`);
}
const build = await import(
  before
    ? pathToFileURL(`${process.env.TAPROOT_BENCH_BEFORE}/node/index.js`).href
    : "../dist/node/index.js"
);
const server = createFor(mode, build);
// The load generator keeps its connections open between rounds, which may
// be seconds apart: the same keep-alive timer runs per request, only
// longer than Node's default 5 s.
server.keepAliveTimeout = 60_000;
// Counted the same way in every mode: CPU time per request is the measure
// that survives a busy machine, where wall-clock throughput does not.
let served = 0;
server.on("request", () => {
  served++;
});
const answerCpuMeter = cpuMeter(() => served);
process.on("message", (msg) => {
  if (answerProfile(msg) || answerCpuMeter(msg)) return;
  if (msg === "stop") {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
server.listen(0, "127.0.0.1", () => {
  process.send?.(server.address().port);
});
