import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import {
  background,
  cause,
  createKey,
  DeadlineExceeded,
  sleep,
  withCancelCause,
  withValue,
  type Context,
} from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import {
  ClientDisconnectedError,
  RequestTimeoutError,
  requestContext,
  ShutdownError,
  type DebugSnapshot,
} from "../../src/node/index.js";
import { contextPlugin, type ContextPluginOptions } from "../../src/fastify/index.js";
import { deferred, until } from "../helpers.js";
import { get, startAbandoned } from "../node/helpers.js";

/** within resolves as `p` does, or fails naming `what` if it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function start(
  options: ContextPluginOptions,
  routes: (app: FastifyInstance) => void,
): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify();
  await app.register(contextPlugin, options);
  routes(app);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  assert.ok(address !== null && typeof address === "object");
  return { app, port: address.port };
}

/** post sends a body and reads the whole response. */
function post(port: number, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("contextPlugin (Fastify 5)", () => {
  it("keeps request.ctx live through a POST whose body was read, until the reply is sent", async () => {
    let seen: Context | undefined;
    const { app, port } = await start({}, (app) => {
      app.post("/orders", async (request) => {
        seen = request.ctx;
        // The body has been read: Node's request 'close' has fired by now.
        await sleep(request.ctx, 100);
        return { err: String(request.ctx.err()), item: (request.body as { item: string }).item };
      });
    });
    try {
      const res = await post(port, "/orders", JSON.stringify({ item: "book" }));
      assert.equal(res.status, 200, `status = ${res.status}, body ${res.body}`);
      assert.deepEqual(JSON.parse(res.body), { err: "null", item: "book" });
      assert.ok(seen !== undefined, "the handler saw no request.ctx");
      await until(() => seen!.err() !== null, 2_000, "the context to end after the reply");
      assert.equal(
        cause(seen),
        seen.err(),
        "a sent reply ends the context without a disconnect cause",
      );
      assert.equal(liveChildCount(app.taproot.context), 0, "request contexts left in the app's");
      assert.equal(app.taproot.inflight().length, 0, "requests left in flight");
    } finally {
      await app.close();
    }
  });

  it("gives every hook and handler the request's one context, the same as requestContext(request.raw), and refuses to replace it", async () => {
    const seen: { hook?: Context; handler?: Context; raw?: Context; assigned?: unknown } = {};
    const { app, port } = await start({}, (app) => {
      app.addHook("preHandler", async (request) => {
        seen.hook = request.ctx;
      });
      app.get("/", async (request) => {
        seen.handler = request.ctx;
        seen.raw = requestContext(request.raw);
        try {
          (request as { ctx: unknown }).ctx = background();
        } catch (err) {
          seen.assigned = err;
        }
        return "ok";
      });
    });
    try {
      const res = await get(port, "/");
      assert.equal(res.status, 200);
      assert.ok(seen.handler !== undefined && seen.handler.err() !== undefined);
      assert.equal(seen.hook, seen.handler, "the hook and the handler see one context");
      assert.equal(seen.raw, seen.handler, "request.ctx is requestContext(request.raw)");
      assert.ok(seen.assigned instanceof TypeError, "assigning request.ctx throws a TypeError");
    } finally {
      await app.close();
    }
  });

  it("cancels request.ctx when the client disconnects, with ClientDisconnectedError", async () => {
    const canceled = deferred<Context>();
    const { app, port } = await start({}, (app) => {
      app.get("/wait", async (request) => {
        await request.ctx.done();
        canceled.resolve(request.ctx);
        return "gone";
      });
    });
    try {
      const client = startAbandoned(port, "/wait");
      await until(() => app.taproot.inflight().length === 1, 2_000, "the request to arrive");
      client.abort();
      const ctx = await canceled.promise;
      assert.ok(
        cause(ctx) instanceof ClientDisconnectedError,
        `cause = ${String(cause(ctx))}, want ClientDisconnectedError`,
      );
      await until(() => app.taproot.inflight().length === 0, 2_000, "the list to empty");
    } finally {
      await app.close();
    }
  });

  it("ends request.ctx with the handler's error as cause when it throws, and keeps an earlier cause", async () => {
    const failure = new Error("the handler failed");
    const seen = deferred<{ ctx: Context; atResponse: unknown }>();
    const late = deferred<Context>();
    const { app, port } = await start({ timeout: 50 }, (app) => {
      app.get("/throws", async () => {
        throw failure;
      });
      app.get("/after-deadline", async (request) => {
        await request.ctx.done();
        late.resolve(request.ctx);
        throw new Error("thrown after the deadline");
      });
      app.addHook("onResponse", async (request) => {
        if (request.url === "/throws")
          seen.resolve({ ctx: request.ctx, atResponse: cause(request.ctx) });
      });
    });
    try {
      const failed = await get(port, "/throws");
      assert.equal(failed.status, 500);
      const { ctx, atResponse } = await seen.promise;
      assert.equal(atResponse, failure, "cause(request.ctx) once the error reply is sent");
      assert.equal(cause(ctx), failure);
      const timedOut = await get(port, "/after-deadline");
      assert.equal(timedOut.status, 500);
      const lateCtx = await late.promise;
      assert.equal(lateCtx.err(), DeadlineExceeded);
      assert.ok(
        cause(lateCtx) instanceof RequestTimeoutError,
        `cause ${String(cause(lateCtx))}, want the deadline's RequestTimeoutError`,
      );
    } finally {
      await app.close();
    }
  });

  it("ends request.ctx at the timeout option, and sooner when a deadline header asks", async () => {
    const { app, port } = await start({ timeout: 150 }, (app) => {
      app.get("/slow", async (request, reply) => {
        const remaining = request.ctx.deadline()!.getTime() - Date.now();
        try {
          await sleep(request.ctx, 10_000);
          return "finished";
        } catch (err) {
          const why = cause(request.ctx);
          return reply.code(504).send({
            err: err === DeadlineExceeded,
            source: why instanceof RequestTimeoutError ? why.source : String(why),
            remaining,
          });
        }
      });
    });
    try {
      const t0 = Date.now();
      const byOption = await get(port, "/slow");
      const elapsed = Date.now() - t0;
      assert.equal(byOption.status, 504, `body ${byOption.body}`);
      const a = JSON.parse(byOption.body) as { err: boolean; source: string; remaining: number };
      assert.equal(a.err, true, "err() = DeadlineExceeded");
      assert.equal(a.source, "timeout");
      assert.ok(elapsed >= 100 && elapsed < 5_000, `took ${elapsed} ms, want ~150`);

      const byHeader = await get(port, "/slow", { headers: { "connect-timeout-ms": "40" } });
      const b = JSON.parse(byHeader.body) as { source: string; remaining: number };
      assert.equal(b.source, "connect-timeout-ms");
      assert.ok(b.remaining <= 40, `remaining at start = ${b.remaining} ms, want <= 40`);

      const longer = await get(port, "/slow", { headers: { "grpc-timeout": "60S" } });
      const c = JSON.parse(longer.body) as { source: string };
      assert.equal(c.source, "timeout", "a header can never lengthen the deadline");
    } finally {
      await app.close();
    }
  });

  it("makes a route's handlerTimeout a deadline of request.ctx: DeadlineExceeded, cause RequestTimeoutError, before request.signal's listeners run", async () => {
    let budget = NaN;
    let atAbort: Error | null = null;
    let ctx: Context | undefined;
    const handled = deferred();
    const { app, port } = await start({}, (app) => {
      app.get("/slow", { handlerTimeout: 200 }, async (request) => {
        ctx = request.ctx;
        budget = (request.ctx.deadline()?.getTime() ?? Infinity) - Date.now();
        request.signal.addEventListener("abort", () => (atAbort = request.ctx.err()));
        await sleep(request.ctx, 10_000).catch(() => {});
        handled.resolve();
        return "late";
      });
    });
    try {
      const res = await get(port, "/slow");
      assert.equal(res.status, 503, res.body);
      await within(handled.promise, 5_000, "the handler to see its context end");
      assert.ok(budget > 0 && budget <= 200, `deadline() - now = ${budget} ms, want (0, 200]`);
      assert.equal(
        atAbort,
        DeadlineExceeded,
        `ctx.err() when request.signal aborted = ${String(atAbort)}`,
      );
      assert.equal(ctx?.err(), DeadlineExceeded, `ctx.err() = ${String(ctx?.err())}`);
      const why = ctx === undefined ? undefined : cause(ctx);
      assert.ok(
        why instanceof RequestTimeoutError,
        `cause = ${String(why)}, want RequestTimeoutError`,
      );
      assert.equal(why.ms, 200);
      assert.match(why.message, /handlerTimeout of route '\/slow'/);
    } finally {
      await app.close();
    }
  });

  it("keeps a sooner deadline than a route's handlerTimeout", async () => {
    let ctx: Context | undefined;
    const { app, port } = await start({ timeout: 100 }, (app) => {
      app.get("/slow", { handlerTimeout: 60_000 }, async (request) => {
        ctx = request.ctx;
        await sleep(request.ctx, 10_000).catch(() => {});
        return String(cause(request.ctx));
      });
    });
    try {
      const res = await get(port, "/slow");
      assert.equal(
        res.body,
        "RequestTimeoutError: request timed out after 100 ms (timeout option)",
      );
      assert.equal(ctx?.err(), DeadlineExceeded);
    } finally {
      await app.close();
    }
  });

  it("drains on app.close(): quick requests finish, the rest are canceled with ShutdownError", async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const timersBefore = timers();
    const contexts = new Map<string, Context>();
    const { app, port } = await start({ shutdownTimeout: 300 }, (app) => {
      app.get("/:name", async (request, reply) => {
        const { name } = request.params as { name: string };
        contexts.set(name, request.ctx);
        try {
          await sleep(request.ctx, name.startsWith("fast") ? 50 : 10_000);
          return "done";
        } catch {
          return reply.code(503).send("shutting down");
        }
      });
    });
    const responses = ["fast1", "slow1", "slow2"].map((p) => get(port, `/${p}`));
    await until(() => app.taproot.inflight().length === 3, 2_000, "three requests in flight");
    const t0 = Date.now();
    await app.close();
    const elapsed = Date.now() - t0;
    const [fast1, slow1, slow2] = await Promise.all(responses);
    assert.equal(fast1!.status, 200, "/fast1 status");
    assert.equal(slow1!.status, 503, "/slow1 status");
    assert.equal(slow2!.status, 503, "/slow2 status");
    assert.deepEqual(await app.taproot.closed, { completed: 1, canceled: 2 });
    for (const name of ["slow1", "slow2"]) {
      const why = cause(contexts.get(name)!);
      assert.ok(
        why instanceof ShutdownError,
        `cause of /${name} = ${String(why)}, want ShutdownError`,
      );
    }
    assert.ok(elapsed >= 250 && elapsed < 5_000, `close took ${elapsed} ms, want ~300`);
    assert.ok(app.taproot.context.err() !== null, "the app's context outlived close()");
    assert.equal(app.server.listening, false);
    assert.equal(timers(), timersBefore, "timers left after close() (grace, hammer, deadlines)");
  });

  it("closes a connection whose handler ignores its canceled context, so close() returns", async () => {
    const { app, port } = await start({ shutdownTimeout: 50 }, (app) => {
      app.get("/stuck", () => new Promise(() => {})); // never answers, never looks at request.ctx
    });
    const pending = get(port, "/stuck").then(
      (r) => `status ${r.status}`,
      (err: Error) => err.message,
    );
    await until(() => app.taproot.inflight().length === 1, 2_000, "the request to arrive");
    const t0 = Date.now();
    await app.close();
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 5_000, `close() took ${elapsed} ms, want the grace period plus ~1 s`);
    assert.match(await pending, /socket hang up|ECONNRESET/);
    assert.deepEqual(await app.taproot.closed, { completed: 0, canceled: 1 });
  });

  it("closes the HTTP/2 sessions of handlers that ignore their canceled context, without crashing", async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    const app = Fastify({ http2: true });
    let session: http2.ClientHttp2Session | undefined;
    try {
      await app.register(contextPlugin, { shutdownTimeout: 50 });
      app.get("/stuck", () => new Promise(() => {})); // never answers, never looks at request.ctx
      await app.listen({ port: 0, host: "127.0.0.1" });
      const { port } = app.server.address() as { port: number };
      session = http2.connect(`http://127.0.0.1:${port}`);
      session.on("error", () => {}); // the hammer's reset is the point
      const stream = session.request({ ":path": "/stuck" });
      const ended = new Promise<void>((resolve) => stream.once("close", resolve));
      stream.on("error", () => {});
      stream.resume();
      await until(() => app.taproot.inflight().length === 1, 2_000, "the request to arrive");
      const t0 = Date.now();
      const closed = await Promise.race([
        app.close().then(() => "closed"),
        new Promise<string>((resolve) => setTimeout(resolve, 5_000, "still open after 5 s")),
      ]);
      const elapsed = Date.now() - t0;
      assert.deepEqual(uncaught.map(String), [], "uncaught exceptions during app.close()");
      assert.equal(closed, "closed", `app.close() = ${closed}, want closed (grace + ~1 s)`);
      assert.ok(elapsed < 5_000, `close() took ${elapsed} ms, want the grace period plus ~1 s`);
      await ended;
      assert.deepEqual(await app.taproot.closed, { completed: 0, canceled: 1 });
    } finally {
      session?.destroy();
      await app.close().catch(() => {});
      process.off("uncaughtException", onUncaught);
    }
  });

  it("over HTTP/2 with allowHTTP1, closes the HTTP/1 connections of handlers that ignore their context too", async () => {
    const tls = {
      key: readFileSync(new URL("../node/fixtures/tls-key.pem", import.meta.url)),
      cert: readFileSync(new URL("../node/fixtures/tls-cert.pem", import.meta.url)),
    };
    const app = Fastify({ http2: true, https: { allowHTTP1: true, ...tls } });
    try {
      await app.register(contextPlugin, { shutdownTimeout: 50 });
      app.get("/stuck", () => new Promise(() => {})); // never answers, never looks at request.ctx
      await app.listen({ port: 0, host: "127.0.0.1" });
      const { port } = app.server.address() as { port: number };
      const request = https.get({
        host: "127.0.0.1",
        port,
        path: "/stuck",
        rejectUnauthorized: false,
        agent: false,
      });
      const ended = new Promise<void>((resolve) => request.once("close", resolve));
      request.on("error", () => {}); // the hammer's close is the point
      await until(() => app.taproot.inflight().length === 1, 5_000, "the request to arrive");
      const t0 = Date.now();
      const closed = await Promise.race([
        app.close().then(() => "closed"),
        new Promise<string>((resolve) => setTimeout(resolve, 5_000, "still open after 5 s")),
      ]);
      assert.equal(closed, "closed", `app.close() = ${closed}, want closed (grace + ~1 s)`);
      assert.ok(Date.now() - t0 < 5_000, "close() waited past the hammer");
      await ended;
      assert.deepEqual(await app.taproot.closed, { completed: 0, canceled: 1 });
    } finally {
      await app.close().catch(() => {});
    }
  });

  for (const shutdownTimeout of [Infinity, 3_000_000_000]) {
    it(`lets requests finish with shutdownTimeout ${shutdownTimeout}, past setTimeout's 2^31-1 ms`, async () => {
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      const timersBefore = timers();
      const warnings: string[] = [];
      const onWarning = (w: Error): void => void warnings.push(w.name);
      process.on("warning", onWarning);
      let ctx: Context | undefined;
      const { app, port } = await start({ shutdownTimeout }, (app) => {
        app.get("/slow", async (request, reply) => {
          ctx = request.ctx;
          try {
            await sleep(request.ctx, 300);
            return "done";
          } catch {
            return reply.code(503).send("shutting down");
          }
        });
      });
      try {
        // A keep-alive client: its connection closes with the reply, not at a grace period's end.
        const agent = new http.Agent({ keepAlive: true });
        const response = get(port, "/slow", { agent });
        await until(() => app.taproot.inflight().length === 1, 2_000, "the request to arrive");
        const t0 = Date.now();
        const closing = app.close();
        await sleep(background(), 50);
        assert.equal(ctx!.err(), null, `ctx.err() 50 ms into close() = ${String(ctx!.err())}`);
        const r = await response;
        await closing;
        const elapsed = Date.now() - t0;
        agent.destroy();
        assert.equal(r.status, 200, `status ${r.status}: ${r.body}`);
        assert.deepEqual(await app.taproot.closed, { completed: 1, canceled: 0 });
        assert.ok(elapsed < 5_000, `close() took ${elapsed} ms, want ~300 (the request)`);
        assert.deepEqual(warnings, [], "process warnings (TimeoutOverflowWarning?)");
        assert.equal(timers(), timersBefore, "timers left after close()");
      } finally {
        process.off("warning", onWarning);
        await app.close();
      }
    });
  }

  it("closes a keep-alive connection once a reply streaming at close() has ended, not at the grace period's end", async () => {
    const { app, port } = await start({ shutdownTimeout: 10_000 }, (app) => {
      app.get("/stream", async (request, reply) => {
        // The headers go out at once; the body takes 300 ms, so close() finds them sent.
        const body = new PassThrough();
        void (async () => {
          body.write("first\n");
          await sleep(request.ctx, 300).catch(() => {});
          body.end("last\n");
        })();
        return reply.send(body);
      });
    });
    const agent = new http.Agent({ keepAlive: true });
    try {
      const response = get(port, "/stream", { agent });
      await until(() => app.taproot.inflight().length === 1, 2_000, "the request to arrive");
      // Headers sent before close(): no `connection: close` can reach this client.
      await sleep(background(), 50);
      const t0 = Date.now();
      const closing = app.close();
      const r = await response;
      await closing;
      const elapsed = Date.now() - t0;
      assert.equal(r.status, 200, `status ${r.status}: ${r.body}`);
      assert.equal(r.body, "first\nlast\n");
      assert.ok(elapsed < 3_000, `close() took ${elapsed} ms, want ~250 (the rest of the reply)`);
      assert.deepEqual(await app.taproot.closed, { completed: 1, canceled: 0 });
    } finally {
      agent.destroy();
      await app.close();
    }
  });

  it("delivers every reply pipelined on a connection when app.close() begins", async () => {
    const { app, port } = await start({ shutdownTimeout: 10_000 }, (app) => {
      app.get("/:n", async (request) => {
        const n = (request.params as { n: string }).n;
        // The first is slow; the two behind it are ready first and wait for their turn.
        await sleep(request.ctx, n === "1" ? 300 : 10);
        return `body${n}`;
      });
    });
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (reply += chunk));
    socket.on("error", () => {});
    const ended = new Promise((resolve) => socket.once("close", resolve));
    socket.write(
      "GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\nGET /3 HTTP/1.1\r\nhost: x\r\n\r\n",
    );
    try {
      await until(() => app.taproot.inflight().length === 3, 2_000, "three requests in flight");
      await app.close();
      await ended;
      assert.deepEqual(
        [...reply.matchAll(/body\d/g)].map((m) => m[0]),
        ["body1", "body2", "body3"],
        `reply = ${JSON.stringify(reply)}`,
      );
      assert.deepEqual(await app.taproot.closed, { completed: 3, canceled: 0 });
    } finally {
      socket.destroy();
    }
  });

  it("closes the app when options.context ends, and request contexts see its values", async () => {
    const user = createKey<string>("user");
    const [root, stop] = withCancelCause(withValue(background(), user, "ada"));
    const { app, port } = await start({ context: root, shutdownTimeout: 5_000 }, (app) => {
      app.get("/who", async (request) => request.ctx.value(user) ?? "nobody");
    });
    assert.equal((await get(port, "/who")).body, "ada");
    stop(new Error("deploy"));
    const result = await app.taproot.closed;
    assert.deepEqual(result, { completed: 0, canceled: 0 });
    assert.equal(app.server.listening, false, "the server still listens after its context ended");
    const why = cause(app.taproot.context);
    assert.ok(why instanceof ShutdownError, `cause = ${String(why)}`);
    assert.match(why.message, /deploy/);
  });

  it("closes the app once it listens when options.context ended before listen(), so closed means the port is free", async () => {
    // When the base ends: a SIGTERM before the app is built, during a slow
    // boot, or while listen() is on its way; the routes come after register().
    const whens = ["before register", "before listen", "during listen"] as const;
    for (const when of whens) {
      const [root, stop] = withCancelCause(background());
      if (when === "before register") stop(new Error("SIGTERM"));
      const app = Fastify();
      try {
        await app.register(contextPlugin, { context: root });
        app.get("/", async () => "hi");
        if (when === "before listen") stop(new Error("SIGTERM"));
        const listening = app.listen({ port: 0, host: "127.0.0.1" });
        if (when === "during listen") stop(new Error("SIGTERM"));
        await listening;
        const { port } = app.server.address() as net.AddressInfo;
        const result = await within(app.taproot.closed, 5_000, `app.taproot.closed (${when})`);
        assert.deepEqual(result, { completed: 0, canceled: 0 }, when);
        assert.equal(app.server.listening, false, `${when}: server.listening = true, want false`);
        await assert.rejects(get(port, "/"), /ECONNREFUSED/, `${when}: the port still answers`);
      } finally {
        await app.close();
      }
    }
  });

  it("puts its routes on the debug page", async () => {
    const release = deferred();
    const { app, port } = await start({ debugPath: "/debug/taproot", timeout: 60_000 }, (app) => {
      app.get("/users/:id", async () => {
        await release.promise;
        return "ok";
      });
    });
    try {
      const pending = get(port, "/users/7");
      await until(() => app.taproot.inflight().length === 1, 2_000, "the request to arrive");
      const page = await get(port, "/debug/taproot?format=json");
      assert.equal(page.status, 200, page.body);
      const snap = JSON.parse(page.body) as DebugSnapshot;
      const user = snap.requests.find((r) => r.url === "/users/7");
      assert.ok(user !== undefined, `no /users/7 among ${JSON.stringify(snap.requests)}`);
      assert.equal(user.route, "/users/:id");
      assert.equal(user.state, "live");
      assert.ok(
        user.remainingMs !== null && user.remainingMs > 50_000,
        `remaining ${user.remainingMs}`,
      );
      assert.ok(snap.tree !== null, "the page has no context tree");
      const html = await get(port, "/debug/taproot");
      assert.match(html.body, /\/users\/:id/);
      release.resolve();
      assert.equal((await pending).body, "ok");
    } finally {
      await app.close();
    }
  });

  it("rejects bad options with an error naming the plugin and the fix", async () => {
    const cases: [ContextPluginOptions, RegExp][] = [
      [
        { timeout: "5s" as unknown as number },
        /options\.timeout must be a number of milliseconds, got "5s"/,
      ],
      [{ shutdownTimeout: -1 }, /options\.shutdownTimeout must be zero or more/],
      [{ context: null as unknown as Context }, /options\.context is null; pass background\(\)/],
      [{ debugPath: "debug" }, /options\.debugPath must be a path starting with "\/"/],
      ["5s" as ContextPluginOptions, /options must be an object, got "5s" \(string\)/],
      [5_000 as ContextPluginOptions, /options must be an object, got 5000 \(number\)/],
    ];
    for (const [options, want] of cases) {
      const app = Fastify();
      await assert.rejects(
        async () => {
          await app.register(contextPlugin, options);
          await app.ready();
        },
        (err: Error) => {
          assert.match(err.message, /^app\.register\(contextPlugin, options\)/);
          assert.match(err.message, want);
          return true;
        },
      );
      await app.close().catch(() => {});
    }
  });

  it("takes no options at all: Fastify passes {}", async () => {
    const app = Fastify();
    await app.register(contextPlugin);
    app.get("/", async (request) => String(request.ctx.err()));
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const { port } = app.server.address() as net.AddressInfo;
      const res = await get(port, "/");
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, "null", "request.ctx.err() in the handler");
    } finally {
      await app.close();
    }
  });
});
