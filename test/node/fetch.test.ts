import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { describe, it } from "node:test";
import {
  background,
  Canceled,
  DeadlineExceeded,
  withCancel,
  withTimeout,
} from "../../src/index.js";
import { fetchWithContext, serve, type ContextServer } from "../../src/node/index.js";
import { until } from "../helpers.js";

/** echo starts a server that answers with the request's headers, or hangs on /hang. */
async function echo(): Promise<{ app: ContextServer; url: string; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const app = serve(async (ctx, req, res) => {
    seen.push(req.headers);
    if (req.url === "/hang") await ctx.done();
    res.end(JSON.stringify(req.headers));
  });
  const { port } = await app.listen(0, "127.0.0.1");
  return { app, url: `http://127.0.0.1:${port}`, seen };
}

describe("fetchWithContext", () => {
  it("sends the remaining time in connect-timeout-ms, rounded down", async () => {
    const { app, url, seen } = await echo();
    const [ctx, cancel] = withTimeout(background(), 2_000);
    try {
      await (await fetchWithContext(ctx, `${url}/`)).text();
      const ms = Number(seen[0]!["connect-timeout-ms"]);
      assert.ok(ms > 1_000 && ms <= 2_000, `connect-timeout-ms = ${ms}, want (1000, 2000]`);
      assert.equal(seen[0]!["grpc-timeout"], undefined, "grpc-timeout on a non-gRPC request");
    } finally {
      cancel();
      await app.shutdown();
    }
  });

  it("adds grpc-timeout for application/grpc, and only lowers a header the caller set", async () => {
    const { app, url, seen } = await echo();
    const [ctx, cancel] = withTimeout(background(), 60_000);
    try {
      const init = {
        method: "POST",
        body: "",
        headers: { "content-type": "application/grpc+proto", "connect-timeout-ms": "300" },
      };
      await (await fetchWithContext(ctx, `${url}/`, init)).text();
      assert.equal(seen[0]!["connect-timeout-ms"], "300", "a smaller caller header is kept");
      assert.match(String(seen[0]!["grpc-timeout"]), /^\d{1,8}m$/);
      assert.ok(Number(String(seen[0]!["grpc-timeout"]).slice(0, -1)) <= 60_000);
    } finally {
      cancel();
      await app.shutdown();
    }
  });

  it("sends no deadline without one, or when propagateDeadline is false", async () => {
    const { app, url, seen } = await echo();
    const [ctx, cancel] = withTimeout(background(), 60_000);
    try {
      await (await fetchWithContext(background(), `${url}/`)).text();
      await (await fetchWithContext(ctx, `${url}/`, { propagateDeadline: false })).text();
      assert.equal(seen[0]!["connect-timeout-ms"], undefined);
      assert.equal(seen[1]!["connect-timeout-ms"], undefined);
    } finally {
      cancel();
      await app.shutdown();
    }
  });

  it("rejects with ctx.err() when the context ends mid-request", async () => {
    const { app, url } = await echo();
    try {
      const [ctx, cancel] = withCancel(background());
      const pending = fetchWithContext(ctx, `${url}/hang`);
      await until(() => app.inflight().length === 1, 2_000, "the request to arrive");
      cancel();
      await assert.rejects(pending, (err) => err === Canceled);
      await until(() => app.inflight().length === 0, 2_000, "the server to see the disconnect");

      const [short, cancelShort] = withTimeout(background(), 50);
      await assert.rejects(
        fetchWithContext(short, `${url}/hang`),
        (err) => err === DeadlineExceeded,
      );
      cancelShort();
    } finally {
      await app.shutdown();
    }
  });

  it("rejects at once, sending nothing, when the context is already done", async () => {
    const { app, url, seen } = await echo();
    try {
      const [ctx, cancel] = withCancel(background());
      cancel();
      await assert.rejects(fetchWithContext(ctx, `${url}/`), (err) => err === Canceled);
      const [past, cancelPast] = withTimeout(background(), 0);
      await assert.rejects(fetchWithContext(past, `${url}/`), (err) => err === DeadlineExceeded);
      cancelPast();
      assert.equal(seen.length, 0, "requests sent");
    } finally {
      await app.shutdown();
    }
  });

  it("also honours init.signal, and explains a missing context", async () => {
    const { app, url } = await echo();
    try {
      const controller = new AbortController();
      const pending = fetchWithContext(background(), `${url}/hang`, { signal: controller.signal });
      await until(() => app.inflight().length === 1, 2_000, "the request to arrive");
      controller.abort();
      await assert.rejects(pending, { name: "AbortError" });
      await assert.rejects(fetchWithContext(undefined as never, url), {
        name: "TypeError",
        message: /fetchWithContext\(ctx, input, init\): ctx is undefined; pass background\(\)/,
      });
    } finally {
      await app.shutdown();
    }
  });
});
