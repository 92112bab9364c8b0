import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import { describe, it } from "node:test";
import {
  background,
  cause,
  createKey,
  DeadlineExceeded,
  sleep,
  withCancelCause,
  withTimeout,
  withValue,
  type Context,
} from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import { requestContext, serve, ShutdownError, SignalError } from "../../src/node/index.js";
import { deferred, until } from "../helpers.js";
import { get, rawConnection } from "./helpers.js";

/** connections asks the server how many sockets it still has. */
function connections(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
}

describe("serve", () => {
  it("drains on shutdown: requests that finish in the grace period get 200, the rest are canceled", async () => {
    const contexts = new Map<string, Context>();
    const app = serve(async (ctx, req, res) => {
      contexts.set(req.url ?? "", ctx);
      await sleep(ctx, req.url?.startsWith("/fast") ? 100 : 10_000);
      res.end("done\n");
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const responses = ["/fast1", "/fast2", "/slow1", "/slow2"].map((p) => get(port, p));
    await until(() => app.inflight().length === 4, 2_000, "four requests in flight");

    const [grace, cancelGrace] = withTimeout(background(), 500);
    const t0 = Date.now();
    const result = await app.shutdown(grace);
    cancelGrace();
    const elapsed = Date.now() - t0;

    const [fast1, fast2, slow1, slow2] = await Promise.all(responses);
    assert.equal(fast1!.status, 200, "/fast1 status");
    assert.equal(fast2!.status, 200, "/fast2 status");
    assert.equal(slow1!.status, 503, "/slow1 status");
    assert.equal(slow2!.status, 503, "/slow2 status");
    assert.equal(fast1!.headers.connection, "close", "a drained response closes its connection");
    assert.deepEqual(result, { completed: 2, canceled: 2 });
    for (const p of ["/slow1", "/slow2"]) {
      const why = cause(contexts.get(p)!);
      assert.ok(why instanceof ShutdownError, `cause of ${p} = ${String(why)}, want ShutdownError`);
    }
    assert.ok(elapsed >= 400 && elapsed < 5_000, `shutdown took ${elapsed} ms, want ~500`);
    assert.equal(app.server.listening, false);
    assert.equal(await connections(app.server), 0, "connections left");
    assert.equal(liveChildCount(app.context), 0, "live request contexts");
    assert.ok(app.context.err() !== null, "the server's context ends with the server");
  });

  it("does not let a parked keep-alive client or a silent connection hold shutdown open", async () => {
    const app = serve((_ctx, _req, res) => void res.end("ok"));
    const { port } = await app.listen(0, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true });
    await get(port, "/", { agent }); // leaves an idle keep-alive connection
    const silent = net.connect(port, "127.0.0.1"); // connected, never sends a request
    silent.on("error", () => {});
    await new Promise((r) => silent.once("connect", r));
    await until(() => app.inflight().length === 0, 1_000, "the request to finish");
    try {
      const t0 = Date.now();
      await app.shutdown(); // no grace limit: only the drain can end it
      assert.ok(Date.now() - t0 < 1_000, `shutdown took ${Date.now() - t0} ms, want at once`);
      assert.equal(await connections(app.server), 0);
    } finally {
      agent.destroy();
      silent.destroy();
    }
  });

  it("closes a busy keep-alive connection once its last request ends during the drain", async () => {
    const release = deferred();
    const app = serve(async (_ctx, req, res) => {
      if (req.url === "/wait") await release.promise;
      res.end("ok");
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await get(port, "/", { agent });
      const pending = get(port, "/wait", { agent });
      await until(() => app.inflight().length === 1, 1_000, "the request in flight");
      const stopped = app.shutdown();
      release.resolve();
      assert.equal((await pending).status, 200);
      await stopped;
      assert.equal(await connections(app.server), 0);
    } finally {
      agent.destroy();
    }
  });

  /**
   * drainOnBaseEnd serves one request that waits on its context, ends the
   * base context with `why` while it runs, and returns that request's context
   * once the drain is over, with what the shutdown and the client saw.
   */
  async function drainOnBaseEnd(why: unknown) {
    const [base, cancelBase] = withCancelCause(background());
    const started = deferred<Context>();
    const app = serve(
      async (ctx, _req, res) => {
        started.resolve(ctx);
        await sleep(ctx, 10_000);
        res.end();
      },
      { context: base, shutdownTimeout: 100 },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    const response = get(port, "/");
    const ctx = await started.promise;
    cancelBase(why);
    const liveAtOnce = ctx.err() === null;
    const result = await app.closed;
    return { ctx, liveAtOnce, result, status: (await response).status };
  }

  it("drains when the base context ends, and the cause names the signal", async () => {
    const { ctx, liveAtOnce, result, status } = await drainOnBaseEnd(new SignalError("SIGTERM"));
    assert.ok(liveAtOnce, "the base ending must not cancel requests at once");
    assert.deepEqual(result, { completed: 0, canceled: 1 });
    assert.equal(status, 503);
    const why = cause(ctx);
    assert.ok(why instanceof ShutdownError, `cause = ${String(why)}, want ShutdownError`);
    assert.equal(why.signal, "SIGTERM");
    assert.match(why.message, /server shut down \(received SIGTERM\)/);
    assert.ok(why.cause instanceof SignalError);
  });

  it("drains when the base context ends with a cause String() cannot print", async () => {
    const unprintable = Object.create(null) as object;
    const { ctx, result, status } = await drainOnBaseEnd(unprintable);
    assert.deepEqual(result, { completed: 0, canceled: 1 });
    assert.equal(status, 503);
    const why = cause(ctx);
    assert.ok(why instanceof ShutdownError, `cause = ${String(why)}, want ShutdownError`);
    assert.equal(why.message, "server shut down (<unprintable>)");
    assert.equal(why.cause, unprintable);
  });

  it("closes the connections of handlers that ignore their context", async () => {
    const app = serve(async (_ctx, _req, res) => {
      await new Promise((r) => setTimeout(r, 5_000).unref());
      res.end();
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const response = get(port, "/").catch((err: Error) => err);
    await until(() => app.inflight().length === 1, 1_000, "the request in flight");
    const [grace, cancelGrace] = withTimeout(background(), 50);
    const t0 = Date.now();
    await app.shutdown(grace);
    cancelGrace();
    assert.ok(Date.now() - t0 < 4_000, `shutdown took ${Date.now() - t0} ms`);
    assert.ok((await response) instanceof Error, "the client sees the connection closed");
  });

  it("answers 500 to a throw (reported) and 503 to its own deadline (not reported)", async () => {
    const reported: unknown[] = [];
    const app = serve(
      async (ctx, req) => {
        if (req.url === "/throw") throw new Error("boom");
        await sleep(ctx, 10_000);
      },
      { timeout: 50, onError: (_ctx, err) => reported.push(err) },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      assert.equal((await get(port, "/throw")).status, 500);
      const late = await get(port, "/slow");
      assert.equal(late.status, 503);
      assert.equal(reported.length, 1, "errors reported");
      assert.match(String(reported[0]), /boom/);
    } finally {
      await app.shutdown();
    }
  });

  it("gives handlers the request context, with the base context's values", async () => {
    const user = createKey<string>("user");
    const app = serve(
      (ctx, req, res) => {
        assert.equal(requestContext(req), ctx);
        res.end(`${ctx.value(user)} ${ctx.deadline() !== undefined}`);
      },
      { context: withValue(background(), user, "ada"), timeout: 1_000 },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      assert.equal((await get(port)).body, "ada true");
    } finally {
      await app.shutdown();
    }
  });

  it("releases an async handler's request answered within its turn without a close listener, and watches a slower one", async () => {
    const seen: { ctx: import("../../src/index.js").Context; closeListeners: number }[] = [];
    const late = deferred<import("../../src/index.js").Context>();
    const app = serve(async (ctx, req, res) => {
      if (req.url === "/late") {
        await sleep(ctx, 30);
        res.end("late");
        late.resolve(ctx);
        return;
      }
      await Promise.resolve();
      res.end("ok");
      seen.push({ ctx, closeListeners: res.listenerCount("close") });
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const plain = http.createServer((_req, res) => {
      res.end("ok");
      plainListeners.resolve(res.listenerCount("close"));
    });
    const plainListeners = deferred<number>();
    await new Promise<void>((r) => plain.listen(0, "127.0.0.1", r));
    try {
      await get((plain.address() as net.AddressInfo).port);
      const agent = new http.Agent({ keepAlive: true });
      for (let i = 0; i < 10; i++) assert.equal((await get(port, "/", { agent })).body, "ok");
      agent.destroy();
      const want = await plainListeners.promise;
      await until(() => liveChildCount(app.context) === 0, 1_000, "every request's release");
      for (const s of seen) {
        assert.equal(
          s.closeListeners,
          want,
          "close listeners on the response, want node's own only",
        );
        assert.ok(s.ctx.err() !== null, "the context after its release, want ended");
      }
      assert.equal((await get(port, "/late")).body, "late");
      const lateCtx = await late.promise;
      await until(() => lateCtx.err() !== null, 1_000, "the slow handler's release");
      assert.equal(app.inflight().length, 0, "inflight().length");
    } finally {
      plain.close();
      await app.shutdown();
    }
  });

  it("lists the requests in flight", async () => {
    const release = deferred();
    const app = serve(async (_ctx, _req, res) => {
      await release.promise;
      res.end();
    });
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      const before = Date.now();
      const pending = get(port, "/items?id=7", { method: "DELETE" });
      await until(() => app.inflight().length === 1, 1_000, "the request in flight");
      const [r] = app.inflight();
      assert.equal(r!.method, "DELETE");
      assert.equal(r!.url, "/items?id=7");
      assert.ok(r!.startedAt >= before && r!.startedAt <= Date.now(), "startedAt");
      assert.equal(r!.ctx.err(), null);
      release.resolve();
      await pending;
    } finally {
      await app.shutdown();
    }
  });

  it("serves HTTPS and closes an idle TLS keep-alive connection at shutdown", async () => {
    // A throwaway self-signed certificate for 127.0.0.1, for this test only.
    const tls = {
      key: readFileSync(new URL("./fixtures/tls-key.pem", import.meta.url)),
      cert: readFileSync(new URL("./fixtures/tls-cert.pem", import.meta.url)),
    };
    const app = serve((ctx, _req, res) => void res.end(String(ctx.err())), {
      server: https.createServer(tls),
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const agent = new https.Agent({ keepAlive: true, ca: tls.cert });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: "127.0.0.1", port, agent }, (res) => {
            let b = "";
            res.on("data", (d: Buffer) => (b += String(d)));
            res.on("end", () => resolve(b));
          })
          .on("error", reject);
      });
      assert.equal(body, "null");
      const t0 = Date.now();
      await app.shutdown();
      assert.ok(Date.now() - t0 < 1_000, `shutdown took ${Date.now() - t0} ms, want at once`);
      assert.equal(await connections(app.server), 0);
    } finally {
      agent.destroy();
    }
  });

  it("destroys a TLS connection still in its handshake once the grace period is over", async () => {
    const tls = {
      key: readFileSync(new URL("./fixtures/tls-key.pem", import.meta.url)),
      cert: readFileSync(new URL("./fixtures/tls-cert.pem", import.meta.url)),
    };
    const app = serve((_ctx, _req, res) => void res.end("ok"), {
      server: https.createServer(tls),
    });
    const { port } = await app.listen(0, "127.0.0.1");
    // A client that opens TCP and never starts its handshake.
    const silent = net.connect(port, "127.0.0.1");
    silent.on("error", () => {});
    const gone = new Promise((resolve) => silent.once("close", resolve));
    await new Promise((resolve) => silent.once("connect", resolve));
    const [grace, cancel] = withTimeout(background(), 300);
    try {
      const t0 = Date.now();
      await app.shutdown(grace);
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 4_000, `shutdown took ${elapsed} ms, want the grace + ~1 s`);
      await gone;
    } finally {
      cancel();
      silent.destroy();
    }
  });

  it("delivers every response pipelined on a connection when a drain starts", async () => {
    const app = serve(async (ctx, req, res) => {
      // The first is slow; the two behind it finish first and wait for their turn on the socket.
      await sleep(ctx, req.url === "/1" ? 300 : 10);
      res.end(`body${req.url}`);
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const { socket, reply, ended } = rawConnection(port);
    socket.write(
      "GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n\r\nGET /3 HTTP/1.1\r\nhost: x\r\n\r\n",
    );
    await until(() => app.inflight().length === 3, 2_000, "three requests in flight");
    const result = await app.shutdown();
    await ended;
    assert.deepEqual(
      [...reply().matchAll(/body\/\d/g)].map((m) => m[0]),
      ["body/1", "body/2", "body/3"],
      `reply = ${JSON.stringify(reply())}`,
    );
    assert.deepEqual(result, { completed: 3, canceled: 0 });
  });

  it("says connection: close on the last response pipelined on a connection, not on those before it", async () => {
    const release = deferred();
    const app = serve(async (_ctx, _req, res) => {
      await release.promise;
      res.end("ok");
    });
    const { port } = await app.listen(0, "127.0.0.1");
    const { socket, reply, ended } = rawConnection(port);
    socket.write("GET /1 HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => app.inflight().length === 1, 2_000, "the first request");
    const stopped = app.shutdown();
    // Pipelined once the drain has begun: the first response must not close the connection under it.
    socket.write("GET /2 HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => app.inflight().length === 2, 2_000, "the second request");
    release.resolve();
    await ended;
    const heads = reply()
      .split(/(?=HTTP\/1\.1 )/)
      .map((response) => response.split("\r\n\r\n")[0]);
    assert.equal(heads.length, 2, `reply = ${JSON.stringify(reply())}`);
    assert.doesNotMatch(
      heads[0]!,
      /connection: close/i,
      "the first response closed the connection",
    );
    assert.match(heads[1]!, /connection: close/i, "the last response did not say close");
    assert.deepEqual(await stopped, { completed: 2, canceled: 0 });
  });

  it("rejects listen() on a port in use, and explains bad arguments", async () => {
    const a = serve(() => {});
    const b = serve(() => {});
    const { port } = await a.listen(0, "127.0.0.1");
    try {
      await assert.rejects(b.listen(port, "127.0.0.1"), { code: "EADDRINUSE" });
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
    assert.throws(() => serve("handler" as never), {
      name: "TypeError",
      message: /serve\(handler, options\): handler must be a function .* got "handler" \(string\)/,
    });
    assert.throws(() => serve(() => {}, { timeout: -1 }), {
      name: "RangeError",
      message: /options.timeout must be zero or more, got -1/,
    });
    assert.throws(() => a.shutdown(null as never), {
      message: /shutdown\(ctx\): ctx is null; pass background\(\)/,
    });
    assert.equal(DeadlineExceeded.name, "TimeoutError");
  });

  it("settles listen() when shutdown() comes first, and a listen() that fails leaves no listener", async () => {
    const early = serve(() => {});
    const listening = early.listen(0, "127.0.0.1");
    await early.shutdown();
    await assert.rejects(
      listening,
      /listen\(port, host\): the server was shut down before it was listening/,
    );
    const app = serve(() => {});
    await app.listen(0, "127.0.0.1");
    const before = ["error", "listening", "close"].map((e) => app.server.listenerCount(e));
    for (let i = 0; i < 5; i++) {
      await assert.rejects(app.listen(0, "127.0.0.1"), { code: "ERR_SERVER_ALREADY_LISTEN" });
    }
    const after = ["error", "listening", "close"].map((e) => app.server.listenerCount(e));
    assert.deepEqual(after, before, "listeners left by failed listen() calls");
    await app.shutdown();
  });

  it("answers the first request of a connection opened just before shutdown (golang/go#22682)", async () => {
    const app = serve((_ctx, _req, res) => void res.end("late but answered"));
    const { port } = await app.listen(0, "127.0.0.1");
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    await new Promise((r) => socket.once("connect", r));
    await new Promise((r) => setTimeout(r, 30)); // the server has accepted it
    const stopped = app.shutdown();
    let reply = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (reply += chunk));
    const ended = new Promise((r) => socket.once("close", r));
    await new Promise((r) => setTimeout(r, 20)); // the request is on its way
    socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await ended;
    assert.match(reply, /^HTTP\/1\.1 200 OK/, `reply = ${JSON.stringify(reply)}`);
    assert.match(reply, /late but answered$/);
    assert.match(reply, /connection: close/i);
    await stopped;
  });

  it("refuses an HTTP/2 server, pointing at requestContext, a server with a handler of its own, and anything that is no server", () => {
    assert.throws(() => serve(() => {}, { server: http2.createServer() as never }), {
      name: "TypeError",
      message:
        /serve\(handler, options\): options.server is an HTTP\/2 server.*requestContext\(req\)/,
    });
    assert.throws(() => serve(() => {}, { server: { on() {} } as never }), {
      name: "TypeError",
      message: /options.server must be an http.Server or https.Server .* got an object/,
    });
    // A server with a handler of its own: both would answer every request.
    const own = http.createServer((_req, res) => res.end("its own"));
    assert.throws(() => serve(() => {}, { server: own }), {
      name: "TypeError",
      message:
        /^serve\(handler, options\): options.server already has a 'request' listener .*http.createServer\(\)/,
    });
    assert.equal(
      own.listenerCount("request"),
      1,
      "serve() added a listener to a server it refused",
    );
    for (const bad of [5, "fast", () => {}, null]) {
      assert.throws(() => serve(() => {}, bad as never), {
        name: "TypeError",
        message: /serve\(handler, options\): options must be an object, got /,
      });
    }
  });
});
