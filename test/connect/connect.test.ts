import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import {
  background,
  Canceled,
  cause,
  createKey,
  DeadlineExceeded,
  sleep,
  withCancel,
  withTimeout,
  withValue,
  type Context,
} from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import { ClientDisconnectedError, RequestTimeoutError } from "../../src/node/index.js";
import {
  callInterceptor,
  callOptions,
  contextKey,
  handlerContext,
  handlerInterceptor,
} from "../../src/connect/index.js";
import { Sleeper } from "./service.js";
import { until } from "../helpers.js";

/** Seen is what the server's handlers observed of their contexts, per call. */
interface Seen {
  ctx: Context;
  hctx: HandlerContext;
  /** err() after the work, while the response is not yet sent. */
  errBeforeReply: string;
  /** The deadline's remaining ms when the handler started, or null. */
  remaining: number | null;
}

interface Server {
  url: string;
  calls: Seen[];
  close(): Promise<void>;
}

/** start serves Sleeper on loopback, over HTTP/1.1 (Connect) or cleartext HTTP/2 (gRPC). */
async function start(
  version: "1.1" | "2",
  options: { interceptors?: Interceptor[]; shutdownSignal?: AbortSignal } = {},
): Promise<Server> {
  const calls: Seen[] = [];
  const handler = connectNodeAdapter({
    interceptors: options.interceptors ?? [handlerInterceptor()],
    ...(options.shutdownSignal === undefined ? {} : { shutdownSignal: options.shutdownSignal }),
    routes: (router) =>
      router.service(Sleeper, {
        async sleep(req, hctx) {
          const ctx = handlerContext(hctx);
          assert.equal(handlerContext(hctx), ctx, "a second call returned another context");
          const seen: Seen = {
            ctx,
            hctx,
            errBeforeReply: "",
            remaining: ctx.deadline() === undefined ? null : ctx.deadline()!.getTime() - Date.now(),
          };
          calls.push(seen);
          await sleep(ctx, req.value);
          seen.errBeforeReply = String(ctx.err());
          return { value: `slept ${req.value}` };
        },
        async *ticks(req, hctx) {
          const ctx = handlerContext(hctx);
          calls.push({ ctx, hctx, errBeforeReply: "", remaining: null });
          for (let i = 0; i < req.value; i++) {
            await sleep(ctx, 10);
            yield { value: `tick ${i} ${String(ctx.err())}` };
          }
        },
      }),
  });
  if (version === "1.1") {
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      calls,
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }
  const server = http2.createServer(handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function connectClient(url: string, interceptors: Interceptor[] = [callInterceptor()]) {
  return createClient(
    Sleeper,
    createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors }),
  );
}

function grpcClient(url: string) {
  return createClient(
    Sleeper,
    createGrpcTransport({
      baseUrl: url,
      interceptors: [callInterceptor()],
      idleConnectionTimeoutMs: 200,
    }),
  );
}

/**
 * endsAtDeadline waits for a handler's context to end, and checks that it
 * ended at its deadline, from the caller's header: DeadlineExceeded, caused
 * by a RequestTimeoutError naming that header.
 */
async function endsAtDeadline(seen: Seen, version: "1.1" | "2"): Promise<void> {
  await until(() => seen.ctx.err() !== null, 2_000, "the handler's context to end");
  assert.equal(seen.ctx.err(), DeadlineExceeded, `${version}: err() = ${String(seen.ctx.err())}`);
  const why = cause(seen.ctx);
  assert.ok(why instanceof RequestTimeoutError, `${version}: cause = ${String(why)}`);
  assert.equal(why.source, version === "1.1" ? "connect-timeout-ms" : "grpc-timeout");
}

/** rejection returns the ConnectError a call rejected with. */
async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `rejected with ${String(err)}, want a ConnectError`);
    return err;
  }
  assert.fail("the call resolved, want a rejection");
}

describe("handlerContext (Connect server)", () => {
  it("is live while the handler works, and its end after the response is completion, not a disconnect", async () => {
    const server = await start("1.1");
    try {
      const res = await connectClient(server.url).sleep({ value: 30 });
      assert.equal(res.value, "slept 30");
      const [seen] = server.calls;
      assert.ok(seen !== undefined, "the handler never ran");
      assert.equal(seen.errBeforeReply, "null", "err() before the reply");
      await until(() => seen.ctx.err() !== null, 2_000, "the context to end after the response");
      assert.equal(seen.ctx.err(), Canceled);
      assert.equal(
        cause(seen.ctx),
        Canceled,
        `cause = ${String(cause(seen.ctx))}, want Canceled (completion)`,
      );
    } finally {
      await server.close();
    }
  });

  it("keeps the context live through a server stream, and ends it as completion", async () => {
    const server = await start("1.1");
    try {
      const got: string[] = [];
      for await (const m of connectClient(server.url).ticks({ value: 3 })) got.push(m.value);
      assert.deepEqual(got, ["tick 0 null", "tick 1 null", "tick 2 null"]);
      const [seen] = server.calls;
      await until(() => seen!.ctx.err() !== null, 2_000, "the context to end after the stream");
      assert.equal(cause(seen!.ctx), Canceled, `cause = ${String(cause(seen!.ctx))}`);
    } finally {
      await server.close();
    }
  });

  it("ends at the caller's deadline with DeadlineExceeded, over Connect and over gRPC", async () => {
    for (const version of ["1.1", "2"] as const) {
      const server = await start(version);
      try {
        const client = version === "1.1" ? connectClient(server.url, []) : grpcClient(server.url);
        // The connection is set up first: a client's deadline counts from the
        // call's start, the server's from the request's arrival, and an HTTP/2
        // handshake in between on a loaded test run put the client's hang-up
        // more than the 50 ms slack ahead of the server's deadline (read as a
        // disconnect then, by design).
        await client.sleep({ value: 1 });
        // A budget the handler is sure to see start under a loaded test run, and still far below the sleep.
        const err = await rejection(client.sleep({ value: 10_000 }, { timeoutMs: 1_000 }));
        assert.equal(err.code, Code.DeadlineExceeded, `${version}: code = ${Code[err.code]}`);
        const seen = server.calls[1];
        assert.ok(seen !== undefined, `${version}: the handler never ran`);
        assert.ok(
          seen.remaining !== null && seen.remaining <= 1_000,
          `remaining = ${seen.remaining}`,
        );
        await endsAtDeadline(seen, version);
      } finally {
        await server.close();
      }
    }
  });

  it("leaves nothing under its parent when the call ends at its deadline, over Connect and over gRPC", async () => {
    for (const version of ["1.1", "2"] as const) {
      const [root, stop] = withCancel(background());
      const server = await start(version, {
        interceptors: [handlerInterceptor({ context: root })],
      });
      try {
        const client = version === "1.1" ? connectClient(server.url, []) : grpcClient(server.url);
        await client.sleep({ value: 1 }); // the connection first, as above
        for (let i = 1; i <= 3; i++) {
          const err = await rejection(client.sleep({ value: 10_000 }, { timeoutMs: 500 }));
          assert.equal(err.code, Code.DeadlineExceeded, `${version}: code = ${Code[err.code]}`);
          const seen = server.calls[i]!;
          await endsAtDeadline(seen, version);
          await until(
            () => liveChildCount(root) === 0,
            2_000,
            `${version}: call ${i}'s context to leave the parent`,
          );
        }
      } finally {
        await server.close();
        stop();
      }
    }
  });

  it("is canceled as a disconnect when the client gives up mid-call", async () => {
    const server = await start("1.1");
    try {
      const client = new AbortController();
      const call = connectClient(server.url, []).sleep(
        { value: 10_000 },
        { signal: client.signal },
      );
      await until(() => server.calls.length === 1, 2_000, "the call to arrive");
      client.abort();
      await rejection(call);
      const seen = server.calls[0]!;
      await until(() => seen.ctx.err() !== null, 2_000, "the handler's context to end");
      assert.equal(seen.ctx.err(), Canceled);
      assert.ok(
        cause(seen.ctx) instanceof ClientDisconnectedError,
        `cause = ${String(cause(seen.ctx))}, want ClientDisconnectedError`,
      );
    } finally {
      await server.close();
    }
  });

  it("ends as the server's shutdownSignal says, with its reason, also when it has none", async () => {
    for (const reason of [undefined, new Error("server shutting down")]) {
      const shutdown = new AbortController();
      const server = await start("1.1", { shutdownSignal: shutdown.signal });
      try {
        const call = connectClient(server.url).sleep({ value: 10_000 });
        await until(() => server.calls.length === 1, 2_000, "the call to arrive");
        shutdown.abort(reason);
        await rejection(call);
        const seen = server.calls[0]!;
        await until(() => seen.ctx.err() !== null, 2_000, "the handler's context to end");
        assert.equal(seen.ctx.err(), Canceled);
        assert.equal(
          cause(seen.ctx),
          shutdown.signal.reason,
          `abort(${String(reason)}): cause = ${String(cause(seen.ctx))}, want the shutdownSignal's reason`,
        );
      } finally {
        await server.close();
      }
    }
  });

  it("a deadline past 2^31-1 ms, which Connect's own timer cannot wait for, keeps the context to the end of the call", async () => {
    const days30 = 30 * 24 * 3_600_000;
    for (const version of ["1.1", "2"] as const) {
      const [root, stop] = withCancel(background());
      const server = await start(version, {
        interceptors: [handlerInterceptor({ context: root })],
      });
      const [ctx, cancel] = withTimeout(background(), days30);
      try {
        const client = version === "1.1" ? connectClient(server.url) : grpcClient(server.url);
        // Connect's timer fires after 1 ms: the context lived on, and was never ended.
        const res = await client.sleep({ value: 50 }, callOptions(ctx));
        assert.equal(res.value, "slept 50");
        const seen = server.calls[0]!;
        assert.equal(seen.errBeforeReply, "null", `${version}: err() before the reply`);
        await until(() => seen.ctx.err() !== null, 2_000, `${version}: the context to end`);
        assert.equal(
          cause(seen.ctx),
          Canceled,
          `${version}: cause = ${String(cause(seen.ctx))}, want Canceled (completion)`,
        );
        await until(() => liveChildCount(root) === 0, 2_000, `${version}: nothing left under root`);

        // A client that leaves is still a disconnect, though the signal that tells of it is spent.
        const leaving = new AbortController();
        const call = client.sleep({ value: 10_000 }, callOptions(ctx, { signal: leaving.signal }));
        await until(() => server.calls.length === 2, 2_000, `${version}: the call to arrive`);
        await new Promise((resolve) => setTimeout(resolve, 20)); // past Connect's 1 ms
        leaving.abort();
        await rejection(call);
        const second = server.calls[1]!;
        await until(() => second.ctx.err() !== null, 2_000, `${version}: the context to end`);
        const why = cause(second.ctx);
        assert.ok(
          version === "1.1" ? why instanceof ClientDisconnectedError : why instanceof ConnectError,
          `${version}: cause = ${String(why)}, want the client leaving`,
        );
        await until(() => liveChildCount(root) === 0, 2_000, `${version}: nothing left under root`);
      } finally {
        cancel();
        await server.close();
        stop();
      }
    }
  });

  it("takes its parent from handlerInterceptor's context option", async () => {
    const tenant = createKey<string>("tenant");
    const [root, stop] = withCancel(withValue(background(), tenant, "acme"));
    const server = await start("1.1", { interceptors: [handlerInterceptor({ context: root })] });
    try {
      const call = connectClient(server.url).sleep({ value: 10_000 });
      await until(() => server.calls.length === 1, 2_000, "the call to arrive");
      const seen = server.calls[0]!;
      assert.equal(seen.ctx.value(tenant), "acme");
      stop();
      const err = await rejection(call);
      assert.equal(err.code, Code.Canceled, `code = ${Code[err.code]}`);
      assert.equal(liveChildCount(root), 0, "call contexts left under the parent");
    } finally {
      await server.close();
    }
  });

  it("handlerInterceptor refuses options that are no object, and a Context given bare", () => {
    for (const bad of [5, null]) {
      assert.throws(
        () => handlerInterceptor(bad as never),
        /^TypeError: handlerInterceptor\(options\): options must be an object, got .*; leave it out for the defaults$/,
        `handlerInterceptor(${String(bad)})`,
      );
    }
    const [root, stop] = withCancel(background());
    try {
      // Before, the Context was dropped and every call's parent was background().
      assert.throws(
        () => handlerInterceptor(root as never),
        /^TypeError: handlerInterceptor\(options\): options must be an object, got a Context; pass \{ context: ctx \}/,
      );
    } finally {
      stop();
    }
  });

  it("rejects something that is not a HandlerContext", () => {
    assert.throws(
      () => handlerContext({} as HandlerContext),
      /^TypeError: handlerContext\(hctx\): hctx must be the HandlerContext Connect passes to a handler as its second argument, got an object/,
    );
  });
});

describe("callOptions and callInterceptor (Connect client)", () => {
  it("sends the context's remaining time, so the server's context ends with the caller's", async () => {
    const server = await start("1.1");
    try {
      const [ctx, cancel] = withTimeout(background(), 150);
      const err = await rejection(
        connectClient(server.url).sleep({ value: 10_000 }, callOptions(ctx)),
      );
      cancel();
      assert.equal(err.code, Code.DeadlineExceeded, `code = ${Code[err.code]}`);
      const seen = server.calls[0]!;
      assert.ok(
        seen.remaining !== null && seen.remaining <= 150,
        `server's remaining = ${seen.remaining}`,
      );
      await until(() => seen.ctx.err() !== null, 2_000, "the server's context to end");
      assert.equal(seen.ctx.err(), DeadlineExceeded);
    } finally {
      await server.close();
    }
  });

  it("aborts the call when the context is canceled, rejecting with code canceled and the context's error", async () => {
    const server = await start("1.1");
    try {
      const [ctx, cancel] = withCancel(background());
      const call = connectClient(server.url).sleep({ value: 10_000 }, callOptions(ctx));
      await until(() => server.calls.length === 1, 2_000, "the call to arrive");
      cancel();
      const err = await rejection(call);
      assert.equal(err.code, Code.Canceled, `code = ${Code[err.code]}`);
      assert.equal(err.cause, Canceled, `cause = ${String(err.cause)}`);
      await until(() => server.calls[0]!.ctx.err() !== null, 2_000, "the server's context to end");
    } finally {
      await server.close();
    }
  });

  it("leaves nothing on a long-lived context's signal once its calls end, unary and streaming", async () => {
    const server = await start("1.1");
    const [worker, stop] = withCancel(background());
    try {
      const client = connectClient(server.url);
      for (let i = 0; i < 200; i++) await client.sleep({ value: 0 }, callOptions(worker));
      for (let i = 0; i < 5; i++) {
        const ticks: string[] = [];
        for await (const tick of client.ticks({ value: 2 }, callOptions(worker)))
          ticks.push(tick.value);
        assert.equal(ticks.length, 2);
      }
      // A reader that stops early ends its call too.
      for await (const _tick of client.ticks({ value: 5 }, callOptions(worker))) break;
      assert.equal(liveChildCount(worker), 0, "call contexts still under the worker's context");
      // Node keeps the signals AbortSignal.any made from a signal in a set on
      // it (added at the first such use), one entry per call, dropped only
      // when that signal aborts.
      const dependants = Object.getOwnPropertySymbols(worker.signal).find((s) =>
        /dependant/i.test(String(s.description)),
      );
      const held =
        dependants === undefined
          ? undefined
          : (worker.signal as never as Record<symbol, Set<unknown> | undefined>)[dependants];
      assert.equal(held?.size ?? 0, 0, "entries Node keeps on the worker's signal");
      assert.equal(worker.err(), null, "the worker's context");
    } finally {
      stop();
      await server.close();
    }
  });

  it("fails a call whose context is already done without sending it", async () => {
    const server = await start("1.1");
    try {
      const [ctx, cancel] = withCancel(background());
      cancel();
      const err = await rejection(connectClient(server.url).sleep({ value: 1 }, callOptions(ctx)));
      assert.equal(err.code, Code.Canceled);
      const expired = await rejection(
        connectClient(server.url).sleep(
          { value: 1 },
          { contextValues: createContextValues().set(contextKey, withTimeout(background(), 0)[0]) },
        ),
      );
      assert.equal(expired.code, Code.DeadlineExceeded, `code = ${Code[expired.code]}`);
      assert.equal(server.calls.length, 0, "calls that reached the server");
    } finally {
      await server.close();
    }
  });

  it("only lowers a timeoutMs the caller also gave, over Connect and over gRPC", async () => {
    for (const version of ["1.1", "2"] as const) {
      const server = await start(version);
      try {
        const client = version === "1.1" ? connectClient(server.url) : grpcClient(server.url);
        // The context's 150 ms is sooner than timeoutMs' minute: it is sent.
        const [soon, cancelSoon] = withTimeout(background(), 150);
        await rejection(
          client.sleep({ value: 10_000 }, { ...callOptions(soon), timeoutMs: 60_000 }),
        );
        cancelSoon();
        // timeoutMs' 100 ms is sooner than the context's minute: it stays.
        const [late, cancelLate] = withTimeout(background(), 60_000);
        await rejection(client.sleep({ value: 10_000 }, { ...callOptions(late), timeoutMs: 100 }));
        cancelLate();
        const [first, second] = server.calls;
        assert.ok(
          first!.remaining !== null && first!.remaining <= 150,
          `${version}: remaining ${first!.remaining}, want <= 150`,
        );
        assert.ok(
          second!.remaining !== null && second!.remaining <= 100,
          `${version}: remaining ${second!.remaining}, want <= 100`,
        );
      } finally {
        await server.close();
      }
    }
  });

  it("a call failed at its context's deadline always carries the context's DeadlineExceeded", async () => {
    const server = await start("1.1");
    try {
      const client = connectClient(server.url);
      await client.sleep({ value: 1 }); // the connection first
      const causes: string[] = [];
      const note = (what: string, err: ConnectError): void => {
        if (err.code !== Code.DeadlineExceeded || err.cause !== DeadlineExceeded) {
          causes.push(`${what}: code ${Code[err.code]}, cause ${String(err.cause)}`);
        }
      };
      for (let i = 0; i < 50; i++) {
        // With timeoutMs the whole ms left, rounded down, Connect's timer beat
        // the context's by a millisecond in about one call of fifteen.
        const [ctx, cancel] = withTimeout(background(), 10);
        note(
          `unary, call ${i}`,
          await rejection(client.sleep({ value: 10_000 }, callOptions(ctx))),
        );
        cancel();
      }
      for (let i = 0; i < 10; i++) {
        const [ctx, cancel] = withTimeout(background(), 30);
        note(
          `stream, call ${i}`,
          await rejection(
            (async () => {
              for await (const _ of client.ticks({ value: 1_000 }, callOptions(ctx)));
            })(),
          ),
        );
        cancel();
      }
      assert.deepEqual(causes, [], "calls whose error was not the context's DeadlineExceeded");
    } finally {
      await server.close();
    }
  });

  it("a context with 30 days left keeps its call alive, and the server still gets its deadline", async () => {
    const server = await start("1.1");
    const days30 = 30 * 24 * 3_600_000;
    const [ctx, cancel] = withTimeout(background(), days30);
    try {
      // Connect's own timer for a timeoutMs past 2^31-1 ms fired after 1 ms and failed the call.
      const res = await connectClient(server.url).sleep({ value: 50 }, callOptions(ctx));
      assert.equal(res.value, "slept 50", "the call's answer");
      const seen = server.calls[0]!;
      assert.ok(
        seen.remaining !== null && seen.remaining > days30 - 60_000 && seen.remaining <= days30,
        `server's remaining = ${seen.remaining} ms, want about 30 days`,
      );
      assert.equal(ctx.err(), null, "the client's context after the call");
    } finally {
      cancel();
      await server.close();
    }
  });

  it("callOptions refuses init that is no object, and a Context in its place", () => {
    const [ctx, cancel] = withTimeout(background(), 60_000);
    try {
      for (const bad of [5, "x", null]) {
        assert.throws(
          () => callOptions(ctx, bad as never),
          /^TypeError: callOptions\(ctx, init\): init must be an object, got .*; leave it out for the defaults$/,
          `callOptions(ctx, ${String(bad)})`,
        );
      }
      assert.throws(
        () => callOptions(ctx, ctx as never),
        /^TypeError: callOptions\(ctx, init\): init must be Connect call options, got a Context/,
      );
      for (const bad of [Number.NaN, "100"]) {
        assert.throws(
          () => callOptions(ctx, { timeoutMs: bad as never }),
          /^TypeError: callOptions\(ctx, init\): init\.timeoutMs must be a number of milliseconds, got /,
          `callOptions(ctx, { timeoutMs: ${String(bad)} })`,
        );
      }
    } finally {
      cancel();
    }
  });

  it("callInterceptor alone binds a call to the context in contextValues, over gRPC too", async () => {
    for (const version of ["1.1", "2"] as const) {
      const server = await start(version);
      try {
        const client = version === "1.1" ? connectClient(server.url) : grpcClient(server.url);
        const [ctx, cancel] = withTimeout(background(), 150);
        // No signal, no timeoutMs: the interceptor takes both from the context.
        const contextValues = createContextValues().set(contextKey, ctx);
        const err = await rejection(client.sleep({ value: 10_000 }, { contextValues }));
        cancel();
        assert.equal(err.code, Code.DeadlineExceeded, `${version}: code = ${Code[err.code]}`);
        const seen = server.calls[0]!;
        assert.ok(
          seen.remaining !== null && seen.remaining <= 150,
          `${version}: server's remaining = ${seen.remaining}, want <= 150 (the header was not sent)`,
        );
        const res = await client.sleep({ value: 1 }, { contextValues: createContextValues() });
        assert.equal(res.value, "slept 1", "a call without a context passes through");
      } finally {
        await server.close();
      }
    }
  });
});
