/* global process */
/**
 * The server half of bench/node-load.ts, in its own process so the load
 * generator does not share its CPU. `mode` is "plain" (node:http alone),
 * "serve" (the taproot/node wrapper) or "serve+timeout" (with a 5 s
 * per-request deadline). Driven over IPC: it sends its port, then answers
 * "mark" / "report" with the CPU time spent per request in between.
 *
 * Plain JavaScript on the built package, run by plain `node`: the figures
 * are those of the code users run, without a TypeScript loader in the
 * process (under tsx, the same wrapper measured several times slower).
 */
import { createServer } from "node:http";
import { requestContext, serve } from "../dist/node/index.js";

const mode = process.argv[2] ?? "plain";
const server =
  mode === "plain"
    ? createServer((_req, res) => res.end("ok"))
    : mode === "requestContext+timeout"
      ? createServer((req, res) => {
          // The README's own example: the options object is written inline, a new one per request.
          requestContext(req, res, { timeout: 5_000 });
          res.end("ok");
        })
      : serve((_ctx, _req, res) => void res.end("ok"), {
          timeout: mode === "serve+timeout" ? 5_000 : undefined,
        }).server;
// Counted the same way in every mode: CPU time per request is the measure
// that survives a busy machine, where wall-clock throughput does not.
let served = 0;
server.on("request", () => {
  served++;
});
let mark = { cpu: process.cpuUsage(), served: 0 };
process.on("message", (msg) => {
  if (msg === "mark") {
    mark = { cpu: process.cpuUsage(), served };
  } else if (msg === "report") {
    const cpu = process.cpuUsage(mark.cpu);
    process.send?.({ cpuMicros: cpu.user + cpu.system, served: served - mark.served });
  } else if (msg === "stop") {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  }
});
server.listen(0, "127.0.0.1", () => {
  process.send?.(server.address().port);
});
