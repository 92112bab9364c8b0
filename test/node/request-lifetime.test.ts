/**
 * A request's lifetime end to end, on real sockets: every way a request ends
 * (the client leaving, pipelined or not, over HTTP/1 and HTTP/2; the
 * deadline, also one hop down a chain) releases its context and its place.
 */
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import {
  background,
  cause,
  Canceled,
  DeadlineExceeded,
  withCancel,
  type Context,
} from "../../src/index.js";
import { CancelCtx } from "../../src/cancel-ctx.js";
import { RequestCtx, resolvePolicy } from "../../src/fetch/request-context.js";
import { liveChildCount } from "../../src/introspect.js";
import {
  ClientDisconnectedError,
  RequestTimeoutError,
  fetchWithContext,
  requestContext,
  serve,
} from "../../src/node/index.js";
import { loopback, until } from "../helpers.js";

/** pipeline opens a connection, writes `n` GETs at once, and resolves once it is connected. */
async function pipeline(port: number, n: number, path = "/"): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((r) => socket.once("connect", r));
  let text = "";
  for (let i = 0; i < n; i++) text += `GET ${path}?i=${i} HTTP/1.1\r\nhost: x\r\n\r\n`;
  socket.write(text);
  return socket;
}

describe("pipelined requests", () => {
  it("serve(): every request queued behind the first is canceled and released when the client leaves", async () => {
    const contexts: Context[] = [];
    const app = serve(async (ctx) => {
      contexts.push(ctx);
      await ctx.done(); // never answers: the client leaves first
    });
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      const socket = await pipeline(port, 3);
      await until(() => app.inflight().length === 3, 2_000, "three pipelined requests in flight");
      socket.destroy();
      await until(() => app.inflight().length === 0, 2_000, "inflight() to empty");
      assert.equal(contexts.length, 3);
      for (const [i, ctx] of contexts.entries()) {
        assert.equal(ctx.err(), Canceled, `request ${i}: err`);
        assert.ok(
          cause(ctx) instanceof ClientDisconnectedError,
          `request ${i}: cause(ctx) = ${String(cause(ctx))}, want ClientDisconnectedError`,
        );
      }
      assert.equal(liveChildCount(app.context), 0, "live request contexts");
    } finally {
      await app.shutdown();
    }
  });

  it("serve(): 1,000 such connections leave no request in flight and no live context", async () => {
    let seen = 0;
    const app = serve(async (ctx) => {
      seen++;
      await ctx.done();
    });
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      for (let batch = 0; batch < 20; batch++) {
        const target = seen + 50 * 3;
        const sockets = await Promise.all(Array.from({ length: 50 }, () => pipeline(port, 3)));
        await until(() => seen === target, 5_000, `batch ${batch}: 150 requests in flight`);
        for (const s of sockets) s.destroy();
      }
      await until(() => app.inflight().length === 0, 5_000, "inflight() to empty");
      assert.equal(seen, 3_000);
      assert.equal(liveChildCount(app.context), 0, "live request contexts");
    } finally {
      await app.shutdown();
    }
  });

  it("requestContext(): the same on plain node:http, for 1,000 connections", async () => {
    const [parent, cancelParent] = withCancel(background());
    let seen = 0;
    let disconnected = 0;
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res, { context: parent });
      seen++;
      void ctx.done()?.then(() => {
        if (cause(ctx) instanceof ClientDisconnectedError) disconnected++;
      });
    });
    const { port, close: closeServer } = await loopback(server);
    try {
      for (let batch = 0; batch < 20; batch++) {
        const target = seen + 50 * 3;
        const sockets = await Promise.all(Array.from({ length: 50 }, () => pipeline(port, 3)));
        await until(() => seen === target, 5_000, `batch ${batch}: 150 requests bound`);
        for (const s of sockets) s.destroy();
      }
      await until(() => liveChildCount(parent) === 0, 5_000, "every request context to end");
      await until(() => disconnected === 3_000, 2_000, "3,000 ClientDisconnectedError causes");
    } finally {
      cancelParent();
      await closeServer();
    }
  });
});

describe("answered requests", () => {
  it("each request context ends when its response is done and leaves its parent, whether or not anything was derived from it", async () => {
    const [parent, cancelParent] = withCancel(background());
    const ended: Context[] = [];
    const children: Context[] = [];
    let waits = 0;
    const server = http.createServer((req, res) => {
      const ctx = requestContext(req, res, { context: parent, timeout: 60_000 });
      ended.push(ctx);
      const kind = ended.length % 4;
      // Nothing derived (the quick end), a child, a done() waiter, a signal.
      if (kind === 1) children.push(withCancel(ctx)[0]);
      else if (kind === 2) void ctx.done()?.then(() => waits++);
      else if (kind === 3) void ctx.signal;
      res.end("ok");
    });
    const { port, close: closeServer } = await loopback(server);
    try {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      await Promise.all(
        Array.from(
          { length: 200 },
          () =>
            new Promise<void>((resolve, reject) => {
              http
                .get({ port, host: "127.0.0.1", agent }, (res) => {
                  res.resume();
                  res.on("end", resolve);
                })
                .on("error", reject);
            }),
        ),
      );
      agent.destroy();
      await until(() => liveChildCount(parent) === 0, 5_000, "every request context to end");
      assert.equal(ended.length, 200);
      for (const ctx of ended) {
        assert.equal(ctx.err(), Canceled);
        assert.equal(cause(ctx), Canceled);
      }
      for (const ctx of ended.filter((_, i) => (i + 1) % 4 === 3)) {
        assert.equal(ctx.signal.aborted, true);
      }
      for (const child of children) assert.equal(child.err(), Canceled);
      await until(() => waits === 50, 2_000, "every done() waiter to run");
      assert.equal(parent.err(), null);
    } finally {
      cancelParent();
      await closeServer();
    }
  });
});

describe("HTTP/2", () => {
  it("a session that closes under open streams reports ClientDisconnectedError for each", async () => {
    const contexts: Context[] = [];
    const server = http2.createServer((req) => {
      contexts.push(requestContext(req));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on("error", () => {});
    try {
      for (let i = 0; i < 5; i++) {
        const s = client.request({ ":path": `/hang/${i}` });
        s.on("error", () => {});
      }
      await until(() => contexts.length === 5, 2_000, "five streams to arrive");
      client.destroy(); // the whole session goes: a closed tab, a dropped network
      await until(() => contexts.every((c) => c.err() !== null), 2_000, "every context to end");
      for (const [i, ctx] of contexts.entries()) {
        assert.ok(
          cause(ctx) instanceof ClientDisconnectedError,
          `stream ${i}: cause(ctx) = ${String(cause(ctx))}, want ClientDisconnectedError`,
        );
      }
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("causes across a chain", () => {
  /** busy blocks the event loop for `ms`, as a body parser or a slow middleware does. */
  const busy = (ms: number): void => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  it("when the upstream hop gives up at its deadline, the downstream context reads the deadline", async () => {
    const downstream: Context[] = [];
    const b = http.createServer((req, res) => {
      busy(10); // the downstream binds its context a little after the upstream sent
      const ctx = requestContext(req, res);
      downstream.push(ctx);
    });
    const { port: bPort, close: closeB } = await loopback(b);
    const a = serve(
      async (ctx, _req, res) => {
        await fetchWithContext(ctx, `http://127.0.0.1:${bPort}/slow`).catch(() => {});
        res.end();
      },
      { timeout: 300, onError: () => {} },
    );
    const { port: aPort } = await a.listen(0, "127.0.0.1");
    try {
      const res = await fetch(`http://127.0.0.1:${aPort}/`);
      await res.arrayBuffer();
      await until(() => downstream[0]?.err() != null, 2_000, "the downstream context to end");
      const ctx = downstream[0]!;
      const why = cause(ctx);
      assert.equal(
        ctx.err(),
        DeadlineExceeded,
        `downstream err: ${String(ctx.err())}, cause ${String(why)}`,
      );
      assert.ok(why instanceof RequestTimeoutError, `downstream cause = ${String(why)}`);
      assert.equal(why.source, "connect-timeout-ms");
    } finally {
      await a.shutdown();
      await closeB();
    }
  });

  it("a caller that leaves long before the deadline its header set is still a disconnect", async () => {
    const downstream: Context[] = [];
    const b = http.createServer((req, res) => {
      downstream.push(requestContext(req, res));
    });
    const { port: bPort, close: closeB } = await loopback(b);
    try {
      const req = http.request({
        host: "127.0.0.1",
        port: bPort,
        agent: false,
        headers: { "connect-timeout-ms": "10000" },
      });
      req.on("error", () => {});
      req.end();
      await until(() => downstream.length === 1, 2_000, "the request to arrive");
      req.destroy();
      await until(() => downstream[0]!.err() !== null, 2_000, "the context to end");
      assert.equal(downstream[0]!.err(), Canceled);
      assert.ok(cause(downstream[0]!) instanceof ClientDisconnectedError);
    } finally {
      await closeB();
    }
  });
});

describe("a request's context", () => {
  it("is a request context of taproot, with every field one has, in the same order", async () => {
    // The node:http request context sets RequestCtx's fields in a flat
    // constructor of its own (src/node/request-lifetime.ts): a field added
    // to CancelCtx or RequestCtx and not there would read as undefined.
    const parent = withCancel(background())[0];
    const reference = new RequestCtx(resolvePolicy("test", { context: parent }));
    let seen: Context | undefined;
    const server = http.createServer((req, res) => {
      seen = requestContext(req, res, { context: parent });
      res.end("ok");
    });
    const { url, close } = await loopback(server);
    try {
      await (await fetch(url)).text();
      const ctx = seen as Context;
      assert.ok(ctx instanceof RequestCtx && ctx instanceof CancelCtx);
      const own = Object.keys(reference);
      assert.deepEqual(Object.keys(ctx).slice(0, own.length), own);
      assert.equal(String(ctx), `${String(parent)}.WithCancel`);
      await until(() => ctx.err() !== null, 5_000, "the request context to end with its response");
      assert.equal(ctx.err(), Canceled);
    } finally {
      await close();
    }
  });
});
