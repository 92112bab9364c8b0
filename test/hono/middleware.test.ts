import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import { createAdaptorServer, getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { stream } from "hono/streaming";
import {
  background,
  Canceled,
  cause,
  DeadlineExceeded,
  sleep,
  withCancel,
  type Context,
} from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import {
  ClientDisconnectedError,
  RequestTimeoutError,
  serve,
  ShutdownError,
} from "../../src/node/index.js";
import { contextMiddleware, type ContextEnv } from "../../src/hono/index.js";
import { deferred, loopback, until, type Loopback } from "../helpers.js";
import { get } from "../node/helpers.js";

/** onNode serves `app` with @hono/node-server on a free loopback port. */
function onNode(app: Hono<ContextEnv>): Promise<Loopback> {
  return loopback(createAdaptorServer({ fetch: app.fetch }) as http.Server);
}

describe("contextMiddleware (Hono on @hono/node-server)", () => {
  it("keeps the context of a POST live after its body was read, and releases it after the reply", async () => {
    const [parent, cancelParent] = withCancel(background());
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware({ context: parent }));
    let seen: Context | undefined;
    app.post("/echo", async (c) => {
      const body = await c.req.text();
      seen = c.get("ctx");
      await sleep(c.var.ctx, 50);
      return c.text(`${body} ${String(c.var.ctx.err())}`);
    });
    const server = await onNode(app);
    try {
      const res = await get(server.port, "/echo", { method: "POST", headers: {} });
      assert.equal(res.body, " null");
      const withBody = await fetch(`http://127.0.0.1:${server.port}/echo`, {
        method: "POST",
        body: "hello",
      });
      assert.equal(await withBody.text(), "hello null", "the context ended once the body was read");
      await until(() => liveChildCount(parent) === 0, 2_000, "request contexts to be released");
      assert.ok(seen !== undefined && seen.err() !== null, "the context outlived its response");
      assert.equal(cause(seen), seen.err(), "a finished reply is no disconnect");
    } finally {
      cancelParent();
      await server.close();
    }
  });

  it("keeps the context live while a body streams after the handler returned", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    const states: string[] = [];
    let seen: Context | undefined;
    app.get("/stream", (c) => {
      seen = c.var.ctx;
      return stream(c, async (s) => {
        for (let i = 0; i < 3; i++) {
          await sleep(c.var.ctx, 30);
          states.push(String(c.var.ctx.err()));
          await s.write(`${i}\n`);
        }
      });
    });
    const server = await onNode(app);
    try {
      const res = await get(server.port, "/stream");
      assert.equal(res.body, "0\n1\n2\n");
      assert.deepEqual(states, ["null", "null", "null"], "err() while streaming");
      await until(() => seen?.err() !== null, 2_000, "the context to end with the stream");
    } finally {
      await server.close();
    }
  });

  it("cancels the context when the client leaves in the middle of a stream", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    const ended = deferred<Context>();
    app.get("/ticks", (c) =>
      stream(c, async (s) => {
        try {
          for (;;) {
            await sleep(c.var.ctx, 10);
            await s.write("tick\n");
          }
        } catch {
          ended.resolve(c.var.ctx);
        }
      }),
    );
    const server = await onNode(app);
    try {
      const req = http.get({ host: "127.0.0.1", port: server.port, path: "/ticks", agent: false });
      req.on("error", () => {});
      req.on("response", (res) => res.once("data", () => req.destroy()));
      const ctx = await ended.promise;
      assert.ok(
        cause(ctx) instanceof ClientDisconnectedError,
        `cause = ${String(cause(ctx))}, want ClientDisconnectedError`,
      );
    } finally {
      await server.close();
    }
  });

  it("ends the context with the error Hono caught from the handler as cause", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    const failure = new Error("boom");
    let seen: Context | undefined;
    let whileAnswering: unknown;
    app.get("/fail", (c) => {
      seen = c.var.ctx;
      throw failure;
    });
    app.get("/ok", (c) => {
      seen = c.var.ctx;
      return c.text("ok");
    });
    app.onError((error, c) => {
      whileAnswering = c.var.ctx.err();
      return c.text(error.message, 500);
    });
    const server = await onNode(app);
    try {
      const res = await get(server.port, "/fail");
      assert.equal(res.status, 500);
      assert.equal(res.body, "boom");
      assert.equal(whileAnswering, null, "live while app.onError answers");
      await until(() => seen!.err() !== null, 2_000, "the context to end");
      assert.equal(cause(seen!), failure, "the cause says why the context ended");
      const ok = await get(server.port, "/ok");
      assert.equal(ok.body, "ok");
      await until(() => seen!.err() !== null, 2_000, "the context to end");
      assert.equal(cause(seen!), seen!.err(), "a handler that answered ends with Canceled");
    } finally {
      await server.close();
    }
  });

  it("honours the caller's deadline header", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware({ timeout: 60_000 }));
    app.get("/slow", async (c) => {
      try {
        await sleep(c.var.ctx, 10_000);
        return c.text("finished");
      } catch (err) {
        const why = cause(c.var.ctx);
        return c.text(
          `${err === DeadlineExceeded} ${why instanceof RequestTimeoutError ? why.source : String(why)}`,
          504,
        );
      }
    });
    const server = await onNode(app);
    try {
      const res = await get(server.port, "/slow", { headers: { "connect-timeout-ms": "50" } });
      assert.equal(res.status, 504);
      assert.equal(res.body, "true connect-timeout-ms");
    } finally {
      await server.close();
    }
  });
});

describe("contextMiddleware (Hono under taproot/node's serve())", () => {
  it("uses serve()'s request context, so serve()'s drain reaches Hono handlers", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    const seen = deferred<Context>();
    app.get("/slow", async (c) => {
      seen.resolve(c.var.ctx);
      try {
        await sleep(c.var.ctx, 10_000);
        return c.text("finished");
      } catch {
        return c.text("shutting down", 503);
      }
    });
    const listener = getRequestListener(app.fetch);
    const server = serve((_ctx, req, res) => listener(req, res));
    const { port } = await server.listen(0, "127.0.0.1");
    const pending = get(port, "/slow");
    const ctx = await seen.promise;
    assert.equal(server.inflight()[0]?.ctx, ctx, "Hono's context is not serve()'s");
    const [grace, cancelGrace] = withCancel(background());
    cancelGrace();
    const result = await server.shutdown(grace);
    assert.deepEqual(result, { completed: 0, canceled: 1 });
    assert.equal((await pending).status, 503);
    assert.ok(cause(ctx) instanceof ShutdownError, `cause = ${String(cause(ctx))}`);
  });
});

describe("contextMiddleware (Hono's fetch path: app.fetch(request))", () => {
  it("follows request.signal, and ends the context when the chain has returned", async () => {
    const [parent, cancelParent] = withCancel(background());
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware({ context: parent }));
    const started = deferred<Context>();
    app.get("/wait", async (c) => {
      started.resolve(c.var.ctx);
      await c.var.ctx.done();
      return c.text("gone", 503);
    });
    app.get("/", (c) => c.text(`live: ${c.var.ctx.err() === null}`));
    try {
      const ok = await app.fetch(new Request("http://example.test/"));
      assert.equal(await ok.text(), "live: true");
      assert.equal(liveChildCount(parent), 0, "contexts left after the handler returned");

      const client = new AbortController();
      const pending = app.fetch(new Request("http://example.test/wait", { signal: client.signal }));
      const ctx = await started.promise;
      assert.equal(ctx.err(), null, "canceled before the client left");
      client.abort();
      const res = await pending;
      assert.equal(res.status, 503);
      assert.ok(
        cause(ctx) instanceof ClientDisconnectedError,
        `cause = ${String(cause(ctx))}, want ClientDisconnectedError`,
      );
      assert.equal(liveChildCount(parent), 0, "contexts left after a disconnect");
    } finally {
      cancelParent();
    }
  });

  it("ends the context with the error Hono caught from the handler as cause", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    const failure = new Error("boom");
    let seen: Context | undefined;
    app.get("/fail", async (c) => {
      seen = c.var.ctx;
      await Promise.resolve();
      throw failure;
    });
    const res = await app.fetch(new Request("http://example.test/fail"));
    assert.equal(res.status, 500, "Hono's own answer to the error");
    assert.equal(seen!.err(), Canceled);
    assert.equal(cause(seen!), failure, "the cause says why the context ended");
  });

  it("reads the deadline headers and the timeout option", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware({ timeout: 5_000 }));
    app.get("/", (c) => c.text(String(c.var.ctx.deadline()!.getTime() - Date.now())));
    const byOption = Number(await (await app.fetch(new Request("http://example.test/"))).text());
    assert.ok(byOption > 4_000 && byOption <= 5_000, `remaining = ${byOption} ms, want ~5000`);
    const byHeader = await app.fetch(
      new Request("http://example.test/", { headers: { "grpc-timeout": "200m" } }),
    );
    const left = Number(await byHeader.text());
    assert.ok(left > 0 && left <= 200, `remaining = ${left} ms, want <= 200`);
  });

  it("rejects bad options with an error naming contextMiddleware", () => {
    assert.throws(
      () => contextMiddleware({ timeout: "1s" as unknown as number }),
      /^TypeError: contextMiddleware\(options\): options\.timeout must be a number of milliseconds, got "1s" \(string\)/,
    );
    assert.throws(
      () => contextMiddleware({ context: undefined as unknown as Context, timeout: -5 }),
      /options\.timeout must be zero or more/,
    );
  });
});
