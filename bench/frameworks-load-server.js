/* global process, URL */
/**
 * The server half of bench/frameworks-load.ts, in its own process so the
 * load generator does not share its CPU. `mode` names a framework and
 * whether taproot's integration is on:
 *   fastify, fastify+hook, fastify+taproot
 *       Fastify 5 alone / with an empty onRequest hook / with contextPlugin
 *   hono, hono+hook, hono+taproot, hono+function
 *       Hono on @hono/node-server alone / with an empty middleware / with
 *       contextMiddleware / with requestContext(c) called by the handler
 *   connect, connect+hook, connect+taproot
 *       a Connect unary call alone / with an empty interceptor / with
 *       handlerInterceptor and handlerContext
 * Each handler answers at once, and with taproot it touches the request's
 * context the way a real handler would (reads its err()), so the figure is
 * the integration's whole per-request cost. Driven over IPC, and up for a
 * whole generation: its first message is the mode, answered with its port;
 * then it answers "mark" ("marked") and "report" (the CPU time and the
 * requests since the mark), the profile commands of
 * bench/server-profile.js, and "stop".
 *
 * Plain JavaScript on the built package (dist/), run by plain `node`.
 */
import http from "node:http";
import { pathToFileURL } from "node:url";
import { answerProfile, cpuMeter } from "./server-profile.js";

/**
 * The mode comes in the first IPC message, not on the command line: every
 * server process starts with the same arguments, whose size alone moves the
 * stack's alignment and can shift a process's speed for its whole life.
 */
const mode = await new Promise((resolve) => process.once("message", resolve));
const [framework, extra] = mode.split("+");
/**
 * `taproot@before` is the integration of the earlier build whose dist/
 * directory TAPROOT_BENCH_BEFORE names (bench/frameworks-load.ts adds that
 * side when it is set): two builds in one run.
 */
const before = extra === "taproot@before";
/**
 * `taproot@<name>` is the integration of a build that TAPROOT_BENCH_VARIANTS
 * names (`name=/path/to/dist,other=/path/to/dist`): one-off variants of the
 * code, each beside the current build in the same windows.
 */
const variants = new Map(
  (process.env.TAPROOT_BENCH_VARIANTS ?? "")
    .split(",")
    .filter((entry) => entry !== "")
    .map((entry) => {
      const at = entry.indexOf("=");
      return [entry.slice(0, at), entry.slice(at + 1)];
    }),
);
const variant = !before && extra?.startsWith("taproot@") ? extra.slice("taproot@".length) : null;
if (variant !== null && !variants.has(variant)) {
  throw new Error(`frameworks-load-server: TAPROOT_BENCH_VARIANTS names no build "${variant}"`);
}
const taproot = extra === "taproot" || before || variant !== null;
const dist = before
  ? pathToFileURL(`${process.env.TAPROOT_BENCH_BEFORE}/`).href
  : variant !== null
    ? pathToFileURL(`${variants.get(variant)}/`).href
    : new URL("../dist/", import.meta.url).href;
const hook = extra === "hook";
const fn = extra === "function";

async function fastifyServer() {
  const { default: Fastify } = await import("fastify");
  const app = Fastify();
  if (taproot) {
    const { contextPlugin } = await import(`${dist}fastify/index.js`);
    await app.register(contextPlugin);
    app.get("/", async (request) => (request.ctx.err() === null ? "ok" : "done"));
  } else if (hook) {
    app.addHook("onRequest", (_request, _reply, done) => done());
    app.get("/", async () => "ok");
  } else {
    app.get("/", async () => "ok");
  }
  await app.ready();
  return app.server;
}

async function honoServer() {
  const { Hono } = await import("hono");
  const { createAdaptorServer } = await import("@hono/node-server");
  const app = new Hono();
  if (taproot) {
    const { contextMiddleware } = await import(`${dist}hono/index.js`);
    app.use(contextMiddleware());
    app.get("/", (c) => c.text(c.get("ctx").err() === null ? "ok" : "done"));
  } else if (fn) {
    const { requestContext } = await import(`${dist}hono/index.js`);
    app.get("/", (c) => c.text(requestContext(c).err() === null ? "ok" : "done"));
  } else if (hook) {
    app.use((_c, next) => next());
    app.get("/", (c) => c.text("ok"));
  } else {
    app.get("/", (c) => c.text("ok"));
  }
  return createAdaptorServer({ fetch: app.fetch });
}

async function connectServer() {
  const { create, createFileRegistry } = await import("@bufbuild/protobuf");
  const { FileDescriptorProtoSchema, file_google_protobuf_wrappers } =
    await import("@bufbuild/protobuf/wkt");
  const { connectNodeAdapter } = await import("@connectrpc/connect-node");
  // The service of test/connect/service.ts, described at run time.
  const proto = create(FileDescriptorProtoSchema, {
    name: "taproot/test/sleeper.proto",
    package: "taproot.test",
    syntax: "proto3",
    dependency: ["google/protobuf/wrappers.proto"],
    service: [
      {
        name: "Sleeper",
        method: [
          {
            name: "Sleep",
            inputType: ".google.protobuf.Int32Value",
            outputType: ".google.protobuf.StringValue",
          },
        ],
      },
    ],
  });
  const registry = createFileRegistry(proto, (name) =>
    name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined,
  );
  const Sleeper = registry.getService("taproot.test.Sleeper");
  let interceptors = [];
  let sleep = async () => ({ value: "ok" });
  if (taproot) {
    const { handlerContext, handlerInterceptor } = await import(`${dist}connect/index.js`);
    interceptors = [handlerInterceptor()];
    sleep = async (_req, hctx) => ({ value: handlerContext(hctx).err() === null ? "ok" : "done" });
  } else if (hook) {
    interceptors = [(next) => (req) => next(req)];
  }
  const handler = connectNodeAdapter({
    interceptors,
    routes: (router) => router.service(Sleeper, { sleep }),
  });
  return http.createServer(handler);
}

const server =
  framework === "fastify"
    ? await fastifyServer()
    : framework === "hono"
      ? await honoServer()
      : framework === "connect"
        ? await connectServer()
        : undefined;
if (server === undefined) throw new Error(`frameworks-load-server: unknown mode ${mode}`);

// Counted the same way in every mode.
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
