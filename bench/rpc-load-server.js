/* global process, URL */
/**
 * The servers of bench/rpc-load.ts, in a process of their own so that its
 * CPU time is theirs alone: the Echo service on two ports, with a plain
 * grpc-js handler (`plain`) and through taproot-context/grpc's handleUnary
 * (`bridged`), whose handler reads its context the way a real one would
 * (err()); `node bench/rpc-load-server.js plain` (or `bridged`) serves one
 * of them only. Plain JavaScript on the built package (dist/), run by plain
 * node.
 *
 * Over IPC: it sends its ports ({ plain, bridged }, the one not served
 * undefined), then answers "mark" ("marked"), "report"
 * (CPU time in µs and calls served since the mark), the profile commands of
 * bench/server-profile.js, and "stop".
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { handleUnary } from "../dist/grpc/index.js";
import { answerProfile, cpuMeter } from "./server-profile.js";

const require = createRequire(import.meta.url);
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const proto = fileURLToPath(new URL("../test/grpc/fixtures/echo.proto", import.meta.url));
const Echo = grpc.loadPackageDefinition(protoLoader.loadSync(proto)).taproot.test.Echo;

let served = 0;
const handlers = {
  bridged: handleUnary((ctx, call) => {
    served++;
    return { text: ctx.err() === null ? call.request.text : "done" };
  }),
  plain: (call, callback) => {
    served++;
    callback(null, { text: call.request.text });
  },
};

const servers = [];
async function start(say) {
  const server = new grpc.Server();
  servers.push(server);
  server.addService(Echo.service, { say, count: say, collect: say, chat: say });
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
}
const only = process.argv[2];
if (only !== undefined && !(only in handlers))
  throw new Error(`rpc-load-server: unknown mode ${only}`);
const ports = {
  plain: only === undefined || only === "plain" ? await start(handlers.plain) : undefined,
  bridged: only === undefined || only === "bridged" ? await start(handlers.bridged) : undefined,
};
const answerCpuMeter = cpuMeter(() => served);
process.on("message", (msg) => {
  if (answerProfile(msg) || answerCpuMeter(msg)) return;
  if (msg === "stop") {
    for (const server of servers) server.forceShutdown();
    process.exit(0);
  }
});
process.send?.(ports);
