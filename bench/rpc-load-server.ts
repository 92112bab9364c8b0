/**
 * The servers of bench/rpc-load.ts, in a process of their own so that their
 * CPU time is theirs alone: the same Echo service twice, once with plain
 * grpc-js handlers and once through taproot-context/grpc's handleUnary.
 * Prints the two ports, then answers "cpu" on stdin with process.cpuUsage()
 * in microseconds (user + system).
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { handleUnary } from "../src/grpc/index.js";

interface Message {
  text: string;
}

const proto = fileURLToPath(new URL("../test/grpc/fixtures/echo.proto", import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const Echo = (grpc.loadPackageDefinition(protoLoader.loadSync(proto)) as any).taproot.test
  .Echo as grpc.ServiceClientConstructor;

async function start(say: grpc.UntypedHandleCall): Promise<number> {
  const server = new grpc.Server();
  server.addService(Echo.service, { say, count: say, collect: say, chat: say });
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

const plain = await start(
  (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
    callback(null, { text: call.request.text });
  },
);
const bridged = await start(
  handleUnary((_ctx, call: grpc.ServerUnaryCall<Message, Message>) => ({
    text: call.request.text,
  })),
);
console.log(JSON.stringify({ plain, bridged }));
process.stdin.setEncoding("utf8");
process.stdin.on("data", () => {
  const u = process.cpuUsage();
  console.log(JSON.stringify({ cpu: u.user + u.system }));
});
