/**
 * taproot-context/grpc against a real grpc-js server and client on
 * 127.0.0.1: unary and streaming calls, a client that cancels, a deadline,
 * and the trap of grpc-js's "cancelled" event, which also fires after a
 * call succeeded and at the deadline.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "node:test";

import * as grpc from "@grpc/grpc-js";

import {
  Canceled,
  DeadlineExceeded,
  background,
  cause,
  sleep,
  withCancel,
  withCancelCause,
  withTimeout,
  type Context,
} from "../../src/index.js";
import {
  CallCancelledError,
  bindCall,
  callContext,
  callOptions,
  handleBidiStream,
  handleClientStream,
  handleServerStream,
  handleUnary,
  unaryCall,
} from "../../src/grpc/index.js";
import { liveChildCount } from "../../src/introspect.js";
import { startEchoServer, useEchoServer, type Message } from "./echo.js";
import { until } from "../helpers.js";

/** What the server saw of each call: its context, and every "cancelled" event grpc-js emitted. */
interface Seen {
  ctx: Context;
  call: grpc.ServerUnaryCall<Message, Message> | grpc.ServerWritableStream<Message, Message>;
  cancelledEvents: number;
  /** cause(ctx) when the handler returned (or threw). */
  causeAtEnd?: unknown;
}
const seen: Seen[] = [];
/** Each call's Seen, once its handler has started. */
const started: Array<(s: Seen) => void> = [];

function record(ctx: Context, call: Seen["call"]): Seen {
  const s: Seen = { ctx, call, cancelledEvents: 0 };
  call.on("cancelled", () => s.cancelledEvents++);
  seen.push(s);
  started.shift()?.(s);
  return s;
}

function nextCall(): Promise<Seen> {
  return new Promise((resolve) => started.push(resolve));
}

/** What the handlers throw for a request whose text is `throw <name>`, made anew per call. */
const thrown: Record<string, () => unknown> = {
  "code 0": () => Object.assign(new Error("failed with code 0"), { code: 0 }),
  "code 20": () => Object.assign(new Error("failed with code 20"), { code: 20 }),
  AbortError: () => new DOMException("aborted by the handler", "AbortError"),
  // Its legacy code is 11, OUT_OF_RANGE's number.
  InvalidStateError: () => new DOMException("bad state", "InvalidStateError"),
};

/** Values String() cannot print, which some drivers reject with. */
const unprintable: Record<string, () => unknown> = {
  "a null-prototype record": () => Object.assign(Object.create(null), { message: "db said no" }),
  "a throwing toString": () => ({
    toString() {
      throw new Error("no");
    },
  }),
};

function throwIfAsked(text: string): void {
  const name = text.slice(6);
  const make = text.startsWith("throw ") ? (thrown[name] ?? unprintable[name]) : undefined;
  if (make !== undefined) throw make();
}

const echo = useEchoServer(() => ({
  say: handleUnary(async (ctx, call: grpc.ServerUnaryCall<Message, Message>) => {
    const s = record(ctx, call);
    try {
      if (call.request.text === "fail")
        throw { code: grpc.status.NOT_FOUND, details: "no such text" };
      throwIfAsked(call.request.text);
      if (call.request.waitMs) await sleep(ctx, call.request.waitMs);
      return { text: `echo ${call.request.text}` };
    } finally {
      s.causeAtEnd = cause(ctx);
    }
  }),
  count: handleServerStream(async (ctx, call: grpc.ServerWritableStream<Message, Message>) => {
    const s = record(ctx, call);
    try {
      if (call.request.text.startsWith("throw ")) {
        call.write({ text: "first" });
        throwIfAsked(call.request.text);
      }
      const n = Number(call.request.text);
      for (let i = 0; i < n; i++) {
        call.write({ text: String(i) });
        if (call.request.waitMs) await sleep(ctx, call.request.waitMs);
      }
    } finally {
      s.causeAtEnd = cause(ctx);
    }
  }),
  collect: handleClientStream(async (_ctx, call: grpc.ServerReadableStream<Message, Message>) => {
    const texts: string[] = [];
    for await (const m of call) texts.push((m as Message).text);
    return { text: texts.join(",") };
  }),
  chat: handleBidiStream(async (_ctx, call: grpc.ServerDuplexStream<Message, Message>) => {
    // A plain for-await would destroy the stream when it ends, and a
    // destroyed stream can no longer send its status.
    for await (const m of call.iterator({ destroyOnReturn: false })) {
      call.write({ text: `re ${(m as Message).text}` });
    }
  }),
}));

/** settled waits until grpc-js has delivered its late events (the "cancelled" after a status goes out on nextTick). */
async function settled(): Promise<void> {
  await new Promise((r) => setTimeout(r, 50));
}

describe("unary", () => {
  test("a successful call ends its server context without a client-cancel cause, though grpc-js emits cancelled", async () => {
    const got = await unaryCall<Message>(background(), echo.client, "say", { text: "hi" });
    assert.equal(got.text, "echo hi");
    await settled();
    const s = seen.at(-1)!;
    assert.equal(
      s.cancelledEvents,
      1,
      `grpc-js "cancelled" events = ${s.cancelledEvents}, want 1 (the trap this bridge avoids)`,
    );
    assert.equal(
      s.causeAtEnd,
      null,
      `cause(ctx) in the handler = ${String(s.causeAtEnd)}, want null`,
    );
    assert.equal(
      s.ctx.err(),
      Canceled,
      "ctx.err() after the call finished, want Canceled (like Go, once the handler returns)",
    );
    assert.ok(
      !(cause(s.ctx) instanceof CallCancelledError),
      `cause(ctx) = ${String(cause(s.ctx))}, want no client cancel`,
    );
    assert.equal(
      s.call.listenerCount("cancelled"),
      1,
      "the bridge's cancelled listener is still attached (only the test's should be)",
    );
  });

  test("a deadline reads DeadlineExceeded on both sides", async () => {
    const [ctx, cancel] = withTimeout(background(), 100);
    try {
      const call = nextCall();
      await assert.rejects(
        unaryCall(ctx, echo.client, "say", { text: "slow", waitMs: 5_000 }),
        (err) => {
          assert.equal(
            err,
            DeadlineExceeded,
            `client error = ${String(err)}, want DeadlineExceeded`,
          );
          return true;
        },
      );
      const s = await call;
      await s.ctx.done();
      assert.equal(
        s.ctx.err(),
        DeadlineExceeded,
        `server ctx.err() = ${String(s.ctx.err())} (cause ${String(cause(s.ctx))}, at end ${String(s.causeAtEnd)}), want DeadlineExceeded`,
      );
      assert.equal(
        cause(s.ctx),
        DeadlineExceeded,
        `server cause(ctx) = ${String(cause(s.ctx))}, want DeadlineExceeded`,
      );
      assert.ok(
        s.ctx.deadline() !== undefined,
        "server ctx.deadline() is undefined, want the caller's deadline",
      );
    } finally {
      cancel();
    }
  });

  test("a client that cancels cancels the server's context with CallCancelledError", async () => {
    const [ctx, cancel] = withCancel(background());
    const call = nextCall();
    const pending = unaryCall(ctx, echo.client, "say", { text: "wait", waitMs: 5_000 });
    const s = await call;
    cancel();
    await assert.rejects(pending, (err) => {
      assert.equal(err, Canceled, `client error = ${String(err)}, want Canceled`);
      return true;
    });
    await s.ctx.done();
    assert.equal(s.ctx.err(), Canceled, `server ctx.err() = ${String(s.ctx.err())}, want Canceled`);
    const why = cause(s.ctx);
    assert.ok(
      why instanceof CallCancelledError,
      `server cause(ctx) = ${String(why)}, want CallCancelledError`,
    );
    assert.equal(why.path, "/taproot.test.Echo/Say");
  });

  test("the server ctx has the caller's deadline, to the millisecond's slack", async () => {
    const [ctx, cancel] = withTimeout(background(), 60_000);
    try {
      const call = nextCall();
      await unaryCall(ctx, echo.client, "say", { text: "x" });
      const s = await call;
      const diff = Math.abs(s.ctx.deadline()!.getTime() - ctx.deadline()!.getTime());
      assert.ok(
        diff < 1_000,
        `server deadline differs by ${diff} ms from the client's, want < 1000`,
      );
    } finally {
      cancel();
    }
  });

  test("an error with a status code reaches the client as that status", async () => {
    await assert.rejects(
      unaryCall(background(), echo.client, "say", { text: "fail" }),
      (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.NOT_FOUND, `code = ${err.code}, want NOT_FOUND`);
        assert.equal(err.details, "no such text");
        return true;
      },
    );
  });

  test("an error whose code is no gRPC error status (0, 20, a DOMException's) reaches the client as UNKNOWN", async () => {
    for (const name of Object.keys(thrown)) {
      await assert.rejects(
        unaryCall(background(), echo.client, "say", { text: `throw ${name}` }),
        (err: grpc.ServiceError) => {
          assert.equal(err.code, grpc.status.UNKNOWN, `${name}: code = ${err.code}, want UNKNOWN`);
          assert.equal(err.details, (thrown[name]!() as Error).message, `${name}: details`);
          return true;
        },
      );
    }
  });

  test("a rejection String() cannot print reaches the client as UNKNOWN, unary and streaming", async () => {
    for (const name of Object.keys(unprintable)) {
      await assert.rejects(
        unaryCall(background(), echo.client, "say", { text: `throw ${name}` }),
        (err: grpc.ServiceError) => {
          assert.equal(err.code, grpc.status.UNKNOWN, `${name}: code = ${err.code}, want UNKNOWN`);
          assert.equal(err.details, "<unprintable>", `${name}: details`);
          return true;
        },
      );
      const stream = (echo.client.count as (m: Message) => grpc.ClientReadableStream<Message>)({
        text: `throw ${name}`,
      });
      stream.on("data", () => {});
      const [err] = (await once(stream, "error")) as [grpc.ServiceError];
      assert.equal(err.code, grpc.status.UNKNOWN, `${name} (stream): code = ${err.code}`);
    }
  });

  test("a context already done rejects at once and sends nothing", async () => {
    const [ctx, cancel] = withCancel(background());
    cancel();
    const before = seen.length;
    await assert.rejects(
      unaryCall(ctx, echo.client, "say", { text: "never" }),
      (err) => err === Canceled,
    );
    await settled();
    assert.equal(seen.length, before, "the server saw a call, want none");
  });

  test("a client-streaming call gets its one response", async () => {
    const res = await new Promise<Message>((resolve, reject) => {
      const call = (
        echo.client.collect as (
          cb: (e: Error | null, m?: Message) => void,
        ) => grpc.ClientWritableStream<Message>
      )((e, m) => (e ? reject(e) : resolve(m!)));
      call.write({ text: "a" });
      call.write({ text: "b" });
      call.end();
    });
    assert.equal(res.text, "a,b");
  });
});

describe("streaming", () => {
  function count(ctx: Context, n: number, waitMs: number): grpc.ClientReadableStream<Message> {
    const f = echo.client.count as (
      m: Message,
      o: grpc.CallOptions,
    ) => grpc.ClientReadableStream<Message>;
    return bindCall(ctx, f.call(echo.client, { text: String(n), waitMs }, callOptions(ctx)));
  }

  test("a finished stream ends its server context without a client-cancel cause", async () => {
    const got: string[] = [];
    for await (const m of count(background(), 3, 0)) got.push((m as Message).text);
    assert.deepEqual(got, ["0", "1", "2"]);
    await settled();
    const s = seen.at(-1)!;
    assert.equal(
      s.causeAtEnd,
      null,
      `cause(ctx) in the handler = ${String(s.causeAtEnd)}, want null`,
    );
    assert.ok(
      !(cause(s.ctx) instanceof CallCancelledError),
      `cause(ctx) = ${String(cause(s.ctx))}, want no client cancel`,
    );
  });

  test("canceling the client's context cancels the stream and the server's context", async () => {
    const [ctx, cancel] = withCancel(background());
    const call = nextCall();
    const stream = count(ctx, 1_000, 20);
    const s = await call;
    const [first] = (await once(stream, "data")) as [Message];
    assert.equal(first.text, "0");
    cancel();
    const [err] = (await once(stream, "error")) as [grpc.ServiceError];
    assert.equal(
      err.code,
      grpc.status.CANCELLED,
      `client stream error code = ${err.code}, want CANCELLED`,
    );
    await s.ctx.done();
    assert.equal(s.ctx.err(), Canceled);
    assert.ok(
      cause(s.ctx) instanceof CallCancelledError,
      `server cause(ctx) = ${String(cause(s.ctx))}, want CallCancelledError`,
    );
    assert.ok(s.causeAtEnd instanceof CallCancelledError || s.causeAtEnd === undefined);
  });

  test("a deadline ends the stream with DEADLINE_EXCEEDED and the server reads DeadlineExceeded", async () => {
    const [ctx, cancel] = withTimeout(background(), 150);
    try {
      const call = nextCall();
      const stream = count(ctx, 1_000, 20);
      stream.on("data", () => {});
      const s = await call;
      const [err] = (await once(stream, "error")) as [grpc.ServiceError];
      assert.equal(
        err.code,
        grpc.status.DEADLINE_EXCEEDED,
        `client stream error code = ${err.code}, want DEADLINE_EXCEEDED`,
      );
      await ctx.done();
      assert.equal(ctx.err(), DeadlineExceeded);
      await s.ctx.done();
      assert.equal(
        s.ctx.err(),
        DeadlineExceeded,
        `server ctx.err() = ${String(s.ctx.err())} (cause ${String(cause(s.ctx))}, at end ${String(s.causeAtEnd)}), want DeadlineExceeded`,
      );
    } finally {
      cancel();
    }
  });

  test("a stream whose handler throws an error with code 0 or a DOMException ends UNKNOWN, never OK", async () => {
    for (const name of Object.keys(thrown)) {
      const f = echo.client.count as (m: Message) => grpc.ClientReadableStream<Message>;
      const stream = f.call(echo.client, { text: `throw ${name}` });
      const got: string[] = [];
      stream.on("data", (m: Message) => got.push(m.text));
      stream.on("error", () => {}); // the status says it (once() would reject on "error")
      const status = await new Promise<grpc.StatusObject>((resolve) =>
        stream.on("status", resolve),
      );
      assert.deepEqual(got, ["first"], `${name}: messages before the failure`);
      assert.equal(
        status.code,
        grpc.status.UNKNOWN,
        `${name}: the stream's status = ${status.code} (${status.details}), want UNKNOWN`,
      );
    }
  });

  test("a bidirectional stream answers each message and ends cleanly", async () => {
    const f = echo.client.chat as (
      o: grpc.CallOptions,
    ) => grpc.ClientDuplexStream<Message, Message>;
    const call = bindCall(background(), f.call(echo.client, callOptions(background())));
    call.write({ text: "a" });
    call.write({ text: "b" });
    call.end();
    const got: string[] = [];
    for await (const m of call) got.push((m as Message).text);
    assert.deepEqual(got, ["re a", "re b"]);
  });
});

/** within settles as `p` does, or rejects after `ms` ms saying it was still pending. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe("client helpers", () => {
  test("callOptions keeps the earlier deadline and the other options", () => {
    const [ctx, cancel] = withTimeout(background(), 10_000);
    try {
      const soon = Date.now() + 1_000;
      assert.equal(callOptions(ctx, { deadline: soon, host: "h" }).deadline, soon);
      const o = callOptions(ctx, { deadline: Date.now() + 60_000, host: "h" });
      assert.equal(o.host, "h");
      assert.deepEqual(o.deadline, ctx.deadline());
      assert.deepEqual(callOptions(background()), {});
    } finally {
      cancel();
    }
  });

  test("bindCall lets go of the call once its status arrives", async () => {
    const [ctx, cancel] = withCancel(background());
    try {
      const f = echo.client.count as (
        m: Message,
        o: grpc.CallOptions,
      ) => grpc.ClientReadableStream<Message>;
      const stream = bindCall(ctx, f.call(echo.client, { text: "1" }, {}));
      const before = stream.listenerCount("status");
      stream.resume();
      await once(stream, "status");
      assert.equal(
        stream.listenerCount("status"),
        before - 1,
        "bindCall's status listener is still attached",
      );
      cancel(); // must not reach the finished call
      await settled();
    } finally {
      cancel();
    }
  });

  test("unaryCall refuses a streaming method and sends nothing, so canceling its context later is harmless", async () => {
    const [ctx, cancel] = withCancel(background());
    const before = seen.length;
    try {
      for (const [method, kind] of [
        ["count", "server-streaming"],
        ["collect", "client-streaming"],
        ["chat", "bidirectional"],
      ] as const) {
        await assert.rejects(
          within(unaryCall(ctx, echo.client, method, { text: "3" }), 2_000, `unaryCall(${method})`),
          (err: Error) => {
            assert.ok(
              err instanceof TypeError,
              `unaryCall(${method}) rejected with ${String(err)}, want a TypeError`,
            );
            assert.match(
              err.message,
              new RegExp(
                `^unaryCall\\(ctx, client, method, request\\): client\\.${method} is a ${kind} method.*bindCall\\(ctx, call\\)`,
              ),
            );
            return true;
          },
        );
        assert.equal(
          liveChildCount(ctx),
          0,
          `liveChildCount(ctx) after unaryCall(${method}), want 0`,
        );
      }
    } finally {
      cancel(); // crashed the process with an unhandled 'error' event when a stream was open
    }
    await settled();
    assert.equal(seen.length, before, "calls the server saw, want none");
  });

  test("unaryCall refuses metadata that is no grpc-js Metadata, and options that are no object", async () => {
    await assert.rejects(
      unaryCall(background(), echo.client, "say", { text: "hi" }, {}),
      /^TypeError: unaryCall\(ctx, client, method, request\): metadata must be a grpc-js Metadata \(new grpc.Metadata\(\)\), got an object; pass undefined for none/,
    );
    await assert.rejects(
      unaryCall(background(), echo.client, "say", { text: "hi" }, undefined, 5 as never),
      /^TypeError: unaryCall\(ctx, client, method, request\): options must be an object of grpc-js call options, got 5 \(number\)/,
    );
    // Shaped like a Metadata (as one from another copy of grpc-js is), yet not grpc-js's own.
    const lookalike = { getMap: () => ({}), clone: () => lookalike };
    await assert.rejects(
      unaryCall(background(), echo.client, "say", { text: "hi" }, lookalike),
      /^TypeError: unaryCall\(ctx, client, method, request\): client\.say refused its arguments \("Incorrect arguments passed"\); metadata must be a Metadata of the same @grpc\/grpc-js/,
    );
    const metadata = new grpc.Metadata();
    metadata.set("x-tenant", "acme");
    const got = await unaryCall<Message>(
      background(),
      echo.client,
      "say",
      { text: "md" },
      metadata,
      {},
    );
    assert.equal(got.text, "echo md", "a call with real Metadata and options");
  });

  test("options that are no object, or a Context given bare, are refused with the fix", () => {
    const [ctx, cancel] = withCancel(background());
    try {
      const handler = (): void => {};
      for (const bad of [5, "ctx", null]) {
        assert.throws(
          () => handleUnary(handler, bad as never),
          /^TypeError: handleUnary\(handler, options\): options must be an object, got .*; leave it out for the defaults$/,
          `handleUnary(handler, ${String(bad)})`,
        );
      }
      // Before, the Context was dropped and every call's parent was background().
      assert.throws(
        () => handleServerStream(handler, ctx as never),
        /^TypeError: handleServerStream\(handler, options\): options must be an object, got a Context; pass \{ context: ctx \}/,
      );
      assert.throws(
        () => callOptions(ctx, 5 as never),
        /^TypeError: callOptions\(ctx, options\): options must be an object, got 5 \(number\)/,
      );
      assert.throws(
        () => callOptions(ctx, ctx as never),
        /^TypeError: callOptions\(ctx, options\): options must be grpc-js call options, got a Context/,
      );
    } finally {
      cancel();
    }
  });

  test("bad arguments fail with the function's name and the fix", async () => {
    assert.throws(
      () => callContext(background(), {} as never),
      /callContext\(parent, call\): call must be a grpc-js server call/,
    );
    assert.throws(
      () => callContext(undefined as never, {} as never),
      /callContext\(parent, call\): parent is undefined; pass background\(\)/,
    );
    assert.throws(
      () => bindCall(background(), null as never),
      /bindCall\(ctx, call\): call must be a grpc-js client call/,
    );
    assert.throws(
      () => handleUnary("x" as never),
      /handleUnary\(handler, options\): handler must be a function/,
    );
    await assert.rejects(
      unaryCall(background(), echo.client, "nope", {}),
      /unaryCall\(ctx, client, method, request\): client\.nope must be a unary method/,
    );
  });
});

describe("server shutdown", () => {
  /** startServer serves Echo's `say` with a handler that waits for its context, under `parent`. */
  async function startServer(parent: Context) {
    const seen: Context[] = [];
    const say = handleUnary(
      async (ctx, _call: grpc.ServerUnaryCall<Message, Message>) => {
        seen.push(ctx);
        await ctx.done();
        return { text: "late" };
      },
      { context: parent },
    );
    const none = () => {};
    const { server, client } = await startEchoServer({
      say,
      count: none,
      collect: none,
      chat: none,
    });
    return { server, client, seen };
  }

  test("forceShutdown() alone reads as the call cancelled; the parent canceled first gives its cause", async () => {
    for (const cancelParentFirst of [false, true]) {
      const [parent, cancelParent] = withCancelCause(background());
      const { server, client, seen } = await startServer(parent);
      try {
        const answered = unaryCall(background(), client, "say", { text: "x" }).then(
          () => undefined,
          (err: unknown) => err,
        );
        await until(() => seen.length > 0, 5_000, "the handler to start");
        assert.equal(seen.length, 1, "the handler started");
        const shutdown = new Error("server shutting down");
        if (cancelParentFirst) cancelParent(shutdown);
        server.forceShutdown();
        await seen[0]!.done();
        if (cancelParentFirst) assert.equal(cause(seen[0]!), shutdown, "the parent's cause");
        else assert.ok(cause(seen[0]!) instanceof CallCancelledError, String(cause(seen[0]!)));
        assert.ok((await answered) !== undefined, "the client's call failed");
      } finally {
        cancelParent(undefined);
        client.close();
      }
    }
  });
});
