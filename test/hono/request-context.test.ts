import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import { createAdaptorServer, getRequestListener } from "@hono/node-server";
import { Hono, type Env } from "hono";
import { stream } from "hono/streaming";
import { background, cause, sleep, withCancel, type Context } from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import { fetchHandler } from "../../src/fetch/index.js";
import { ClientDisconnectedError, serve } from "../../src/node/index.js";
import { contextMiddleware, requestContext, type ContextEnv } from "../../src/hono/index.js";
import { deferred, loopback, until, type Loopback } from "../helpers.js";
import { get } from "../node/helpers.js";

/** onNode serves `app` with @hono/node-server on a free loopback port. */
function onNode<E extends Env>(app: Hono<E>): Promise<Loopback> {
  return loopback(createAdaptorServer({ fetch: app.fetch }) as http.Server);
}

describe("requestContext(c) (Hono on @hono/node-server, no middleware)", () => {
  it("makes the context on the first call, returns the same one after, and releases it after the reply", async () => {
    const [parent, cancelParent] = withCancel(background());
    const app = new Hono();
    let first: Context | undefined;
    let again: Context | undefined;
    let liveBefore = -1;
    app.get("/", async (c) => {
      liveBefore = liveChildCount(parent);
      first = requestContext(c, { context: parent });
      await sleep(first, 20);
      again = requestContext(c);
      return c.text(String(first.err()));
    });
    const server = await onNode(app);
    try {
      const res = await get(server.port, "/");
      assert.equal(res.body, "null");
      assert.equal(liveBefore, 0, "a context existed before the handler asked for one");
      assert.equal(again, first, "a second call made another context, want the same");
      await until(() => liveChildCount(parent) === 0, 2_000, "the request context to be released");
      assert.ok(first !== undefined && first.err() !== null, "the context outlived its response");
      assert.equal(cause(first), first.err(), "a finished reply is no disconnect");
    } finally {
      cancelParent();
      await server.close();
    }
  });

  it("ends the context with the error Hono caught from the handler as cause, once any middleware runs", async () => {
    const app = new Hono();
    // A lone handler takes Hono's fast path, which hands an error to app.onError
    // without recording it on c (docs/hono.md); any middleware leaves that path.
    app.use((_c, next) => next());
    const failure = new Error("boom");
    let seen: Context | undefined;
    app.get("/fail", async (c) => {
      seen = requestContext(c);
      await sleep(seen, 10);
      throw failure;
    });
    const server = await onNode(app);
    try {
      const res = await get(server.port, "/fail");
      assert.equal(res.status, 500);
      await until(() => seen!.err() !== null, 2_000, "the context to end");
      assert.equal(cause(seen!), failure, "the cause says why the context ended");
    } finally {
      await server.close();
    }
  });

  it("keeps the context live while a body streams, and cancels it when the client leaves", async () => {
    const app = new Hono();
    const left = deferred<Context>();
    app.get("/stream", (c) =>
      stream(c, async (s) => {
        const ctx = requestContext(c);
        await s.write("first\n");
        try {
          for (let i = 0; i < 200; i++) await sleep(ctx, 10);
        } catch (err) {
          // The client leaving is what this test waits for; anything else fails it.
          if (ctx.err() === null) throw err;
        } finally {
          left.resolve(ctx);
        }
      }),
    );
    const server = await onNode(app);
    try {
      const req = http.get({ host: "127.0.0.1", port: server.port, path: "/stream" }, (res) => {
        res.once("data", () => req.destroy());
      });
      req.on("error", () => {});
      const ctx = await left.promise;
      assert.ok(
        cause(ctx) instanceof ClientDisconnectedError,
        `cause = ${String(cause(ctx))}, want ClientDisconnectedError`,
      );
    } finally {
      await server.close();
    }
  });

  it("applies the timeout option of the first call", async () => {
    const app = new Hono();
    app.get("/", (c) =>
      c.text(String(requestContext(c, { timeout: 5_000 }).deadline()!.getTime() - Date.now())),
    );
    const server = await onNode(app);
    try {
      const remaining = Number((await get(server.port, "/")).body);
      assert.ok(remaining > 4_000 && remaining <= 5_000, `remaining = ${remaining} ms, want ~5000`);
    } finally {
      await server.close();
    }
  });

  it("returns the context contextMiddleware made", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    app.get("/", (c) => c.text(String(requestContext(c) === c.get("ctx"))));
    const server = await onNode(app);
    try {
      assert.equal((await get(server.port, "/")).body, "true");
    } finally {
      await server.close();
    }
  });

  it("returns the context serve() made, so serve()'s drain reaches the handler", async () => {
    const app = new Hono();
    const seen = deferred<boolean>();
    let served: Context | undefined;
    app.get("/", (c) => {
      seen.resolve(requestContext(c) === served);
      return c.text("ok");
    });
    const listener = getRequestListener(app.fetch);
    const server = serve((ctx, req, res) => {
      served = ctx;
      return listener(req, res);
    });
    const { port } = await server.listen(0, "127.0.0.1");
    try {
      assert.equal((await get(port, "/")).body, "ok");
      assert.equal(await seen.promise, true, "requestContext(c) is not serve()'s context");
    } finally {
      await server.shutdown();
    }
  });
});

describe("requestContext(c) (Hono's fetch path)", () => {
  it("returns the context of a fetchHandler around app.fetch, which ends when app.fetch returns", async () => {
    const app = new Hono();
    let seen: Context | undefined;
    app.get("/", (c) => {
      seen = requestContext(c);
      return c.text(String(seen.err()));
    });
    const handler = fetchHandler((_ctx, request: Request) => app.fetch(request), {
      timeout: 5_000,
    });
    const res = await handler(new Request("http://example.test/"));
    assert.equal(await res.text(), "null");
    assert.ok(seen !== undefined && seen.deadline() !== undefined, "no deadline from the timeout");
    assert.notEqual(seen.err(), null, "the context outlived app.fetch");
  });

  it("returns the context contextMiddleware made", async () => {
    const app = new Hono<ContextEnv>();
    app.use(contextMiddleware());
    app.get("/", (c) => c.text(String(requestContext(c) === c.get("ctx"))));
    assert.equal(await (await app.fetch(new Request("http://example.test/"))).text(), "true");
  });

  it("throws a TypeError naming the fixes when nothing made a context", async () => {
    const app = new Hono();
    let error: unknown;
    app.get("/", (c) => {
      try {
        requestContext(c);
      } catch (err) {
        error = err;
      }
      return c.text("ok");
    });
    await app.fetch(new Request("http://example.test/"));
    assert.ok(error instanceof TypeError, `error = ${String(error)}, want a TypeError`);
    assert.match(
      error.message,
      /^requestContext\(c, options\): .*contextMiddleware\(\).*fetchHandler/,
    );
  });

  it("rejects what is not a Hono Context", () => {
    // An object with an env, but no get() or req, is not one either.
    for (const c of [{}, { env: {} }, null]) {
      assert.throws(
        () => requestContext(c as never),
        /^TypeError: requestContext\(c, options\): c must be the Context Hono passes to a handler or middleware, got/,
      );
    }
  });
});
