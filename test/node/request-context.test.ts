import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { describe, it } from "node:test";
import {
  background,
  cause,
  Canceled,
  DeadlineExceeded,
  withCancel,
  type Context,
} from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import {
  ClientDisconnectedError,
  RequestTimeoutError,
  contextMiddleware,
  fetchHandler,
  requestContext,
  serve,
} from "../../src/node/index.js";
import { deferred, loopback, until } from "../helpers.js";
import { get, rawConnection, startAbandoned } from "./helpers.js";

describe("requestContext", () => {
  it("cancels the context within 50 ms of the client disconnecting mid-request", async () => {
    const started = deferred<Context>();
    const canceledAt = deferred<number>();
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res);
      started.resolve(ctx);
      void ctx.done()?.then(() => canceledAt.resolve(performance.now()));
    });
    const { port, close } = await loopback(server);
    try {
      const client = startAbandoned(port);
      const ctx = await started.promise;
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(ctx.err(), null, "ctx.err() before the disconnect");
      const t0 = performance.now();
      client.abort();
      const elapsed = (await canceledAt.promise) - t0;
      assert.ok(elapsed < 50, `canceled ${elapsed.toFixed(1)} ms after the disconnect, want < 50`);
      assert.equal(ctx.err(), Canceled);
      assert.ok(
        cause(ctx) instanceof ClientDisconnectedError,
        `cause(ctx) = ${String(cause(ctx))}, want ClientDisconnectedError`,
      );
    } finally {
      await close();
    }
  });

  it("is not canceled when a POST body has been read (nodejs/node#38924), only on disconnect", async () => {
    const bodyRead = deferred<Context>();
    const canceled = deferred();
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res);
      req.resume();
      req.on("end", () => bodyRead.resolve(ctx));
      void ctx.done()?.then(() => canceled.resolve());
    });
    const { port, close } = await loopback(server);
    try {
      const req = http.request({ host: "127.0.0.1", port, method: "POST", agent: false });
      req.on("error", () => {});
      req.end("a body that the handler reads in full");
      const ctx = await bodyRead.promise;
      await new Promise((r) => setTimeout(r, 50)); // req 'close' has fired by now
      assert.equal(ctx.err(), null, "ctx.err() after the body was read, want null");
      req.destroy();
      await canceled.promise;
      assert.ok(cause(ctx) instanceof ClientDisconnectedError);
    } finally {
      await close();
    }
  });

  it("never cancels a request that completes, and releases it once the response is finished", async () => {
    const seen: { during: Error | null; atFinish: Error | null; ctx: Context }[] = [];
    const [parent, cancelParent] = withCancel(background());
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res, { context: parent });
      setTimeout(() => {
        const entry = { during: ctx.err(), atFinish: null as Error | null, ctx };
        seen.push(entry);
        res.on("finish", () => (entry.atFinish = ctx.err()));
        res.end("ok");
      }, 10);
    });
    const { port, close } = await loopback(server);
    try {
      const agent = new http.Agent({ keepAlive: true });
      for (let i = 0; i < 20; i++) assert.equal((await get(port, "/", { agent })).body, "ok");
      agent.destroy();
      assert.equal(seen.length, 20);
      for (const s of seen) {
        assert.equal(s.during, null, "ctx.err() while handling, want null");
        assert.equal(s.atFinish, null, "ctx.err() at 'finish', want null");
      }
      await until(() => liveChildCount(parent) === 0, 1_000, "request contexts to be released");
      for (const s of seen) {
        assert.equal(
          cause(s.ctx),
          Canceled,
          "cause after release, want Canceled (not a disconnect)",
        );
      }
    } finally {
      cancelParent();
      await close();
    }
  });

  it("ends the context of a response finished within its turn of the event loop, and leaves it no close listener", async () => {
    const seen: { ctx: Context; closeListeners: number; errInTurn: Error | null }[] = [];
    const [parent, cancelParent] = withCancel(background());
    const plainCloseListeners = deferred<number>();
    const server = http.createServer((req, res) => {
      if (req.url === "/plain") {
        res.end("ok");
        plainCloseListeners.resolve(res.listenerCount("close"));
        return;
      }
      const ctx = requestContext(req, res, { context: parent, timeout: 5_000 });
      // A handler that answers after a microtask still finishes within the turn.
      void Promise.resolve().then(() => {
        res.end("ok");
        const entry = { ctx, closeListeners: res.listenerCount("close"), errInTurn: ctx.err() };
        seen.push(entry);
      });
    });
    const { port, close } = await loopback(server);
    try {
      const agent = new http.Agent({ keepAlive: true });
      await get(port, "/plain", { agent });
      for (let i = 0; i < 10; i++) assert.equal((await get(port, "/", { agent })).body, "ok");
      agent.destroy();
      const plain = await plainCloseListeners.promise;
      assert.equal(seen.length, 10);
      for (const s of seen) {
        assert.equal(s.errInTurn, null, "ctx.err() in the handler's turn, want null");
        assert.equal(
          s.closeListeners,
          plain,
          "close listeners on the response, want node's own only",
        );
        assert.equal(
          cause(s.ctx),
          Canceled,
          "cause once the turn is over, want Canceled (released)",
        );
      }
      assert.equal(liveChildCount(parent), 0, "request contexts left in the parent");
    } finally {
      cancelParent();
      await close();
    }
  });

  it("releases a request answered earlier in its turn as soon as the next one is bound, not at the turn's end", async () => {
    // Held to the turn's end, a finished request keeps its request and
    // response alive through every garbage collection in between.
    const [parent, cancelParent] = withCancel(background());
    const seen: { sameTurn: boolean; firstCause: unknown }[] = [];
    let first: Context | undefined;
    let turnOver = false;
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res, { context: parent, timeout: 5_000 });
      if (first === undefined) {
        first = ctx;
        turnOver = false;
        setImmediate(() => (turnOver = true));
        res.end("first");
        return;
      }
      seen.push({ sameTurn: !turnOver, firstCause: cause(first) });
      first = undefined;
      res.end("second");
    });
    let accepted = 0;
    server.on("connection", () => accepted++);
    const { port, close } = await loopback(server);
    try {
      // Two connections the server has accepted, written to at once, are most
      // often read in one turn; a few tries make sure that happened once.
      for (let attempt = 0; attempt < 20 && !seen.some((s) => s.sameTurn); attempt++) {
        const connections = [rawConnection(port), rawConnection(port)];
        const expected = accepted + 2;
        await until(() => accepted === expected, 1_000, "the server to accept both connections");
        for (const c of connections) {
          c.socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        }
        await Promise.all(connections.map((c) => c.ended));
      }
      const sameTurn = seen.filter((s) => s.sameTurn);
      assert.ok(sameTurn.length > 0, "no try had both requests read in one turn of the event loop");
      for (const s of sameTurn) {
        assert.equal(
          s.firstCause,
          Canceled,
          "the first request's cause when the second was bound, want Canceled (released)",
        );
      }
      assert.equal(liveChildCount(parent), 0, "request contexts left in the parent");
    } finally {
      cancelParent();
      await close();
    }
  });

  it("sees a response destroyed within its turn as the client leaving, and watches one answered later", async () => {
    const destroyed = deferred<Context>();
    const later = deferred<{ ctx: Context; duringWait: Error | null }>();
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res);
      if (req.url === "/destroy") {
        // Gone before the turn is over: no close listener of ours saw it.
        res.destroy();
        destroyed.resolve(ctx);
        return;
      }
      setTimeout(() => {
        const duringWait = ctx.err();
        res.end("late");
        later.resolve({ ctx, duringWait });
      }, 30);
    });
    const { port, close } = await loopback(server);
    try {
      await assert.rejects(get(port, "/destroy"));
      const ctx = await destroyed.promise;
      await until(() => ctx.err() !== null, 1_000, "the destroyed response's context to end");
      assert.ok(
        cause(ctx) instanceof ClientDisconnectedError,
        `cause ${String(cause(ctx))}, want ClientDisconnectedError`,
      );
      assert.equal((await get(port, "/later")).body, "late");
      const { ctx: lateCtx, duringWait } = await later.promise;
      assert.equal(duringWait, null, "ctx.err() 30 ms in, before the answer, want null");
      await until(() => lateCtx.err() !== null, 1_000, "the late response's release");
      assert.equal(cause(lateCtx), Canceled, "cause after the late answer, want Canceled");
    } finally {
      await close();
    }
  });

  it("reads Node's own requestTimeout as the server's deadline, not as the client leaving", async () => {
    const bound = deferred<Context>();
    const server = http.createServer(
      { requestTimeout: 300, connectionsCheckingInterval: 50 },
      (req, res) => {
        bound.resolve(requestContext(req, res));
        req.resume(); // waits for a body that never completes
      },
    );
    const { port, close } = await loopback(server);
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    socket.on("error", () => {});
    try {
      socket.write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial");
      const ctx = await bound.promise;
      await until(() => ctx.err() !== null, 5_000, "node's requestTimeout to end the request");
      assert.equal(ctx.err(), DeadlineExceeded);
      const why = cause(ctx);
      assert.ok(
        why instanceof RequestTimeoutError,
        `cause ${String(why)}, want RequestTimeoutError`,
      );
      assert.equal(why.source, "requestTimeout");
      assert.equal(why.ms, 300);
      assert.match(why.message, /requestTimeout of 300 ms/);
      await until(() => answer.includes(" 408 "), 2_000, "node's 408 answer");
    } finally {
      socket.destroy();
      await close();
    }
  });

  it("leaves no listener and no context behind on a keep-alive socket reused for 1,000 requests", async () => {
    const app = serve((_ctx, _req, res) => {
      res.end("ok");
    });
    const sockets: import("node:net").Socket[] = [];
    app.server.on("connection", (s) => sockets.push(s));
    const { port } = await app.listen(0, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const listeners = (s: import("node:net").Socket) =>
      s
        .eventNames()
        .map((e) => `${String(e)}=${s.listenerCount(e)}`)
        .sort()
        .join(" ");
    try {
      await get(port, "/", { agent });
      await until(() => liveChildCount(app.context) === 0, 1_000, "the first request's release");
      const before = listeners(sockets[0]!);
      for (let i = 0; i < 1_000; i++) await get(port, "/", { agent });
      assert.equal(sockets.length, 1, "connections opened, want 1 (keep-alive)");
      await until(() => liveChildCount(app.context) === 0, 1_000, "every request's release");
      assert.equal(listeners(sockets[0]!), before, "socket listeners after 1,000 requests");
      assert.equal(app.inflight().length, 0, "inflight().length");
    } finally {
      agent.destroy();
      await app.shutdown();
    }
  });

  it("returns the same context on every call, and finds Express's req.res", async () => {
    const server = http.createServer((req, res) => {
      (req as { res?: unknown }).res = res; // what Express does
      const ctx = requestContext(req);
      assert.equal(requestContext(req), ctx);
      assert.equal(requestContext(req, res), ctx);
      res.end("same");
    });
    const { port, close } = await loopback(server);
    try {
      assert.equal((await get(port)).body, "same");
    } finally {
      await close();
    }
  });

  it("cancels at options.timeout with DeadlineExceeded and a RequestTimeoutError cause", async () => {
    const done = deferred<Context>();
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res, { timeout: 30 });
      void ctx.done()?.then(() => {
        done.resolve(ctx);
        res.end();
      });
    });
    const { port, close } = await loopback(server);
    try {
      const t0 = Date.now();
      void get(port);
      const ctx = await done.promise;
      assert.ok(Date.now() - t0 < 300, "deadline fired within 10x of the timeout");
      assert.equal(ctx.err(), DeadlineExceeded);
      const why = cause(ctx);
      assert.ok(why instanceof RequestTimeoutError && why.ms === 30 && why.source === "timeout");
    } finally {
      await close();
    }
  });

  it("keeps options.timeout when the wall clock is stepped back mid-request", async () => {
    const realNow = Date.now;
    const done = deferred<number>();
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res, { timeout: 300 });
      const t0 = performance.now();
      // An NTP correction of 5 s back, just after the request arrived.
      Date.now = () => realNow() - 5_000;
      void ctx.done()?.then(() => {
        done.resolve(performance.now() - t0);
        res.end();
      });
    });
    const { port, close } = await loopback(server);
    try {
      void get(port);
      const elapsed = await done.promise;
      assert.ok(
        elapsed >= 250 && elapsed < 2_000,
        `the 300 ms budget ended after ${Math.round(elapsed)} ms`,
      );
    } finally {
      Date.now = realNow;
      await close();
    }
  });

  it("explains a missing response and a bad request", () => {
    const req = new http.IncomingMessage(null as never);
    assert.throws(() => requestContext(req), {
      name: "TypeError",
      message: /requestContext\(req, res\): res is missing .* pass the response on the first call/,
    });
    assert.throws(() => requestContext(undefined as never), {
      name: "TypeError",
      message: /requestContext\(req, res\): req must be an incoming request .* got undefined/,
    });
    assert.throws(() => requestContext(req, {} as never), {
      message: /res must be the request's response \(http.ServerResponse\), got an object/,
    });
    assert.throws(() => requestContext(req, undefined, { timeout: "5" as never }), {
      message: /options.timeout must be a number of milliseconds, got "5" \(string\)/,
    });
  });

  it("refuses a fake response, a fake request and options that are no object", () => {
    const req = new http.IncomingMessage(null as never);
    const fake = { writeHead() {}, on() {}, end() {} };
    assert.throws(() => requestContext(req, fake as never), {
      name: "TypeError",
      message:
        /requestContext\(req, res\): res must be the request's response \(http.ServerResponse\), got an object/,
    });
    assert.throws(() => requestContext({ headers: {}, method: "GET" } as never), {
      name: "TypeError",
      message: /req must be an incoming request .* got an object/,
    });
    const res = new http.ServerResponse(req);
    for (const bad of [5_000, "fast", null]) {
      assert.throws(() => requestContext(req, res, bad as never), {
        name: "TypeError",
        message: /requestContext\(req, res\): options must be an object, got /,
      });
      assert.throws(() => contextMiddleware(bad as never), {
        name: "TypeError",
        message: /contextMiddleware\(options\): options must be an object, got /,
      });
    }
    assert.throws(() => requestContext(req, res, { deadlineHeaders: "no" as never }), {
      message: /options.deadlineHeaders must be true or false, got "no" \(string\)/,
    });
  });

  it("names itself in an error about its parent, after another function took equal options", async () => {
    // A user's context whose deadline() breaks its contract: found per request, so after the options were resolved.
    const broken = {
      done: () => new Promise<void>(() => {}),
      err: () => null,
      value: () => undefined,
      deadline: () => "soon",
    } as unknown as Context;
    const options = { context: broken };
    fetchHandler(() => new Response("ok"), options);
    const thrown: string[] = [];
    const server = http.createServer((req, res) => {
      try {
        requestContext(req, res, { context: broken }); // equal options, another function
      } catch (err) {
        thrown.push((err as Error).message);
      }
      res.end();
    });
    const { port, close } = await loopback(server);
    try {
      assert.equal((await get(port, "/")).status, 200);
      assert.equal(thrown.length, 1, "requestContext did not throw");
      assert.match(thrown[0]!, /^requestContext\(req, res\): /, `message: ${thrown[0]}`);
      assert.match(thrown[0]!, /parent\.deadline\(\) returned "soon"/);
    } finally {
      await close();
    }
  });

  it("HTTP/2: a reset stream cancels the context, a finished one is only released", async () => {
    const contexts: Context[] = [];
    const canceled = deferred();
    const server = http2.createServer((req, res) => {
      const ctx = requestContext(req);
      contexts.push(ctx);
      if (req.url === "/fast") res.end("ok");
      else void ctx.done()?.then(() => canceled.resolve());
    });
    const { url, close } = await loopback(server);
    const client = http2.connect(url);
    try {
      await new Promise<void>((resolve) => {
        const s = client.request({ ":path": "/fast" });
        s.resume();
        s.on("end", resolve);
      });
      const slow = client.request({ ":path": "/slow" });
      slow.on("error", () => {});
      await until(() => contexts.length === 2, 1_000, "the second request");
      slow.close(http2.constants.NGHTTP2_CANCEL);
      await canceled.promise;
      assert.ok(cause(contexts[1]!) instanceof ClientDisconnectedError, "reset stream's cause");
      await until(() => contexts[0]!.err() !== null, 1_000, "the finished request's release");
      assert.equal(cause(contexts[0]!), Canceled, "finished stream's cause, want Canceled");
    } finally {
      client.close();
      await close();
    }
  });
});
