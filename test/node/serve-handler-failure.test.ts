/**
 * serve() and a handler that fails: the request's context ends because the
 * handler failed, with its error as cause, whether serve() could still answer
 * 500 or had to reset a half-sent response.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { afterFunc, Canceled, cause, type Context } from "../../src/index.js";
import { ClientDisconnectedError, serve } from "../../src/node/index.js";
import { deferred, until } from "../helpers.js";
import { get, rawConnection } from "./helpers.js";

describe("serve, when a handler fails", () => {
  it("ends the context with the handler's error, not ClientDisconnectedError, before resetting a half-sent response", async () => {
    const failure = new Error("database went away");
    const ended = deferred<{ err: Error | null; why: unknown }>();
    const reported: unknown[] = [];
    const app = serve(
      async (ctx, _req, res) => {
        // What background work the handler started with ctx would see.
        afterFunc(ctx, () => ended.resolve({ err: ctx.err(), why: cause(ctx) }));
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("partial");
        await new Promise((r) => setTimeout(r, 20));
        throw failure;
      },
      { onError: (_ctx, err) => reported.push(err) },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      const client = rawConnection(port);
      client.socket.write("GET /report HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
      await client.ended; // the client never closes its side: the server does
      assert.match(client.reply(), /^HTTP\/1\.1 200 OK/, "the half-sent response");
      assert.doesNotMatch(client.reply(), /\r\n0\r\n\r\n$/, "the body was ended, want a reset");
      const { err, why } = await ended.promise;
      assert.equal(err, Canceled, `ctx.err() = ${String(err)}, want Canceled`);
      assert.ok(
        !(why instanceof ClientDisconnectedError),
        `cause(ctx) = ${String(why)}, want the handler's error, not a client disconnect`,
      );
      assert.equal(why, failure, `cause(ctx) = ${String(why)}, want the handler's error`);
      assert.deepEqual(reported, [failure], "onError calls");
      await until(() => app.inflight().length === 0, 5_000, "the request to be released");
    } finally {
      await app.shutdown();
    }
  });

  it("ends the context with the handler's error when it answers 500, thrown or rejected", async () => {
    const contexts = new Map<string, Context>();
    const app = serve(
      (ctx, req) => {
        contexts.set(req.url ?? "", ctx);
        if (req.url === "/throw") throw new Error("thrown");
        return Promise.reject(new Error("rejected"));
      },
      { onError: () => {} },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      for (const [path, message] of [
        ["/throw", "thrown"],
        ["/reject", "rejected"],
      ] as const) {
        assert.equal((await get(port, path)).status, 500, `${path} status`);
        const ctx = contexts.get(path)!;
        assert.equal(
          ctx.err(),
          Canceled,
          `${path}: ctx.err() = ${String(ctx.err())}, want Canceled`,
        );
        const why = cause(ctx);
        assert.ok(
          why instanceof Error && why.message === message,
          `${path}: cause(ctx) = ${String(why)}, want Error: ${message}`,
        );
      }
    } finally {
      await app.shutdown();
    }
  });

  it("keeps the cause of a context that ended before its handler failed", async () => {
    const started = deferred<Context>();
    const app = serve(
      async (ctx) => {
        started.resolve(ctx);
        await ctx.done();
        throw new Error("after the deadline");
      },
      { timeout: 50, onError: () => {} },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      assert.equal((await get(port, "/slow")).status, 503);
      const ctx = await started.promise;
      assert.equal(
        cause(ctx)?.constructor.name,
        "RequestTimeoutError",
        `cause(ctx) = ${String(cause(ctx))}`,
      );
    } finally {
      await app.shutdown();
    }
  });
});
