import assert from "node:assert/strict";
import http from "node:http";
import { describe, it } from "node:test";
import express from "express";
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
  contextMiddleware,
  fetchHandler,
  requestContext,
  serve,
} from "../../src/node/index.js";
import { deferred, loopback, until } from "../helpers.js";
import { get, startAbandoned } from "./helpers.js";

describe("contextMiddleware (Express)", () => {
  it("gives later middleware and handlers the request's context, canceled on disconnect", async () => {
    const [parent, cancelParent] = withCancel(background());
    const app = express();
    app.use(contextMiddleware({ context: parent, timeout: 5_000 }));
    let fromMiddleware: Context | undefined;
    app.use((req, _res, next) => {
      fromMiddleware = requestContext(req);
      next();
    });
    const canceled = deferred<Context>();
    app.get("/ok", (req, res) => {
      assert.equal(requestContext(req), fromMiddleware);
      res.send(String(requestContext(req).deadline() !== undefined));
    });
    app.get("/wait", (req) => {
      const ctx = requestContext(req);
      void ctx.done()?.then(() => canceled.resolve(ctx));
    });
    const server = http.createServer(app);
    const { port, close } = await loopback(server);
    try {
      assert.equal((await get(port, "/ok")).body, "true");
      const client = startAbandoned(port, "/wait");
      await until(() => liveChildCount(parent) === 1, 2_000, "the request to arrive");
      client.abort();
      const ctx = await canceled.promise;
      assert.ok(cause(ctx) instanceof ClientDisconnectedError, `cause = ${String(cause(ctx))}`);
      await until(() => liveChildCount(parent) === 0, 2_000, "request contexts to be released");
    } finally {
      cancelParent();
      await close();
    }
  });
});

describe("Express mounted routers", () => {
  it("report the URL the client sent, not the one a mounted router rewrote", async () => {
    const arrived = deferred<Context>();
    const router = express.Router();
    router.use(contextMiddleware());
    router.get("/users/:id", (req) => arrived.resolve(requestContext(req)));
    const app = express();
    app.use("/api", router);
    const server = http.createServer(app);
    const { port, close: closeServer } = await loopback(server);
    try {
      const client = startAbandoned(port, "/api/users/7?tab=2");
      const ctx = await arrived.promise;
      client.abort();
      await ctx.done();
      const why = cause(ctx);
      assert.ok(why instanceof ClientDisconnectedError, `cause = ${String(why)}`);
      assert.equal(why.url, "/api/users/7?tab=2");
    } finally {
      await closeServer();
    }
  });

  it("under serve(), inflight() lists the original URL and the route that matched", async () => {
    const arrived = deferred<Context>();
    const router = express.Router();
    router.get("/users/:id", (req) => arrived.resolve(requestContext(req)));
    const app = express();
    app.use("/api", router);
    const served = serve((_ctx, req, res) => app(req, res));
    const { port } = await served.listen(0, "127.0.0.1");
    try {
      const client = startAbandoned(port, "/api/users/7");
      const ctx = await arrived.promise;
      const [r] = served.inflight();
      assert.equal(r?.url, "/api/users/7");
      assert.equal(r?.route, "/api/users/:id");
      client.abort();
      await ctx.done();
      assert.equal((cause(ctx) as ClientDisconnectedError).url, "/api/users/7");
    } finally {
      await served.shutdown();
    }
  });
});

describe("fetchHandler", () => {
  it("cancels the context when request.signal aborts, and releases it when the handler returns", async () => {
    const [parent, cancelParent] = withCancel(background());
    const started = deferred<Context>();
    const handle = fetchHandler(
      async (ctx, request: Request) => {
        assert.equal(requestContext(request), ctx);
        if (request.url.endsWith("/wait")) {
          started.resolve(ctx);
          await ctx.done();
          return new Response("gone", { status: 499 });
        }
        return new Response(`hello ${ctx.err()}`);
      },
      { context: parent },
    );

    const ok = await handle(new Request("http://example.test/"));
    assert.equal(await ok.text(), "hello null", "the handler ran with a live context");
    assert.equal(liveChildCount(parent), 0, "contexts left after the handler returned");

    const client = new AbortController();
    const pending = handle(new Request("http://example.test/wait", { signal: client.signal }));
    const ctx = await started.promise;
    client.abort();
    assert.equal((await pending).status, 499);
    assert.equal(ctx.err(), Canceled);
    assert.ok(cause(ctx) instanceof ClientDisconnectedError, `cause = ${String(cause(ctx))}`);
    assert.equal(liveChildCount(parent), 0);
    cancelParent();
  });

  it("adopts the caller's deadline header and the timeout option, the earlier winning", async () => {
    const handle = fetchHandler(
      (ctx) => {
        const left = ctx.deadline()!.getTime() - Date.now();
        return new Response(String(left));
      },
      { timeout: 1_000 },
    );
    const short = await handle(
      new Request("http://example.test/", { headers: { "connect-timeout-ms": "100" } }),
    );
    assert.ok(Number(await short.text()) <= 100);
    const long = await handle(
      new Request("http://example.test/", { headers: { "grpc-timeout": "10S" } }),
    );
    assert.ok(Number(await long.text()) <= 1_000);
    const expired = fetchHandler((ctx) => new Response(String(ctx.err() === DeadlineExceeded)));
    const r = await expired(
      new Request("http://example.test/", { headers: { "connect-timeout-ms": "0" } }),
    );
    assert.equal(await r.text(), "true", "a zero budget is born done");
  });

  it("ends the context with the handler's error as cause when it throws or rejects", async () => {
    const failure = new Error("boom");
    let seen: Context | undefined;
    const handle = fetchHandler(async (ctx) => {
      seen = ctx;
      await Promise.resolve();
      throw failure;
    });
    await assert.rejects(handle(new Request("http://example.test/")), (e) => e === failure);
    assert.equal(seen!.err(), Canceled);
    assert.equal(cause(seen!), failure, "the cause says why the context ended");
  });

  it("explains a Request no fetchHandler wrapped", () => {
    assert.throws(() => requestContext(new Request("http://example.test/")), {
      name: "TypeError",
      message: /Fetch API Request that no fetchHandler\(\) wrapped/,
    });
  });
});
