/* global process, AbortController */
/**
 * The in-process half of bench/frameworks-load.ts: the CPU time of taproot's
 * own work per request, without sockets, so that other processes on the
 * machine disturb it far less than the load test. Plain node on dist/.
 * Prints one JSON object, nanoseconds per request:
 * - hono: taproot's contextMiddleware called on real node:http request and
 *   response objects, the response then closing finished, beside an empty
 *   middleware on the same objects;
 * - hono-function: requestContext(c) on the same objects, beside nothing;
 *
 * Fastify is left to the load test: its `inject()` closes a response before
 * Node marks it finished, which taproot/node reads as a disconnect, so it
 * would not measure what a real request costs.
 * - connect: handlerContext() and the end of the call, on a HandlerContext
 *   shaped as Connect builds it, beside the bare objects.
 */
import http from "node:http";
import net from "node:net";
import { createContextValues } from "@connectrpc/connect";
import { contextMiddleware, requestContext } from "../dist/hono/index.js";
import { handlerContext, handlerInterceptor } from "../dist/connect/index.js";

/** cpuNs returns the CPU time of one call of `f`, in ns, over `n` calls after a warm-up. */
function cpuNs(f, n) {
  for (let i = 0; i < n / 5; i++) f();
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const t = process.cpuUsage(t0);
  return ((t.user + t.system) * 1000) / n;
}

async function cpuNsAsync(f, n) {
  for (let i = 0; i < n / 5; i++) await f();
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await f();
  const t = process.cpuUsage(t0);
  return ((t.user + t.system) * 1000) / n;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const ROUNDS = 5;

// Hono's middleware on real node:http objects.
const socket = new net.Socket();
function pair() {
  const req = new http.IncomingMessage(socket);
  req.method = "GET";
  req.url = "/";
  req.rawHeaders = ["Host", "127.0.0.1", "User-Agent", "autocannon", "Accept", "*/*"];
  const res = new http.ServerResponse(req);
  // As after res.end(): the close that follows is a finished response, not a disconnect.
  Object.defineProperty(res, "writableFinished", { value: true });
  return [req, res];
}
const middleware = contextMiddleware();
const resolved = Promise.resolve();
const next = () => resolved;
const empty = (_c, next) => next();
const hono = { bare: [], taproot: [] };
for (let r = 0; r < ROUNDS; r++) {
  hono.bare.push(
    cpuNs(() => {
      const [req, res] = pair();
      const vars = new Map();
      const c = { env: { incoming: req, outgoing: res }, set: (k, v) => vars.set(k, v) };
      void empty(c, next);
      res.emit("close");
    }, 50_000),
  );
  hono.taproot.push(
    cpuNs(() => {
      const [req, res] = pair();
      const vars = new Map();
      const c = { env: { incoming: req, outgoing: res }, set: (k, v) => vars.set(k, v) };
      void middleware(c, next);
      vars.get("ctx").err();
      res.emit("close");
    }, 50_000),
  );
}

const noVariable = () => undefined;
const noRequest = {};
const honoFunction = { bare: [], taproot: [] };
for (let r = 0; r < ROUNDS; r++) {
  honoFunction.bare.push(
    cpuNs(() => {
      const [req, res] = pair();
      void { env: { incoming: req, outgoing: res }, get: noVariable, req: noRequest };
      res.emit("close");
    }, 50_000),
  );
  honoFunction.taproot.push(
    cpuNs(() => {
      const [req, res] = pair();
      // Shaped as Hono's Context as far as requestContext(c) checks it.
      const c = { env: { incoming: req, outgoing: res }, get: noVariable, req: noRequest };
      requestContext(c).err();
      res.emit("close");
    }, 50_000),
  );
}

// Connect: handlerInterceptor and handlerContext on a HandlerContext as Connect builds it.
const intercept = handlerInterceptor()(async (req) => ({ stream: false, message: req.message }));
function hctxOf(values, signal) {
  return {
    signal,
    values,
    timeoutMs: () => undefined,
    protocolName: "connect",
    requestMethod: "POST",
    url: "http://127.0.0.1/taproot.test.Sleeper/Sleep",
  };
}
const connect = { bare: [], taproot: [] };
for (let r = 0; r < ROUNDS; r++) {
  connect.bare.push(
    await cpuNsAsync(async () => {
      const controller = new AbortController();
      hctxOf(createContextValues(), controller.signal);
      controller.abort();
    }, 20_000),
  );
  connect.taproot.push(
    await cpuNsAsync(async () => {
      const controller = new AbortController();
      const values = createContextValues();
      await intercept({ contextValues: values, message: 0 });
      handlerContext(hctxOf(values, controller.signal)).err();
      controller.abort();
    }, 20_000),
  );
}

const out = {
  hono: { bare: median(hono.bare), taproot: median(hono.taproot) },
  "hono-function": { bare: median(honoFunction.bare), taproot: median(honoFunction.taproot) },
  connect: { bare: median(connect.bare), taproot: median(connect.taproot) },
};
process.stdout.write(JSON.stringify(out) + "\n");
