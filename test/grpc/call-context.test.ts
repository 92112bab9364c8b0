import assert from "node:assert/strict";
import http2 from "node:http2";
import { describe, test } from "node:test";
import type * as grpc from "@grpc/grpc-js";
import { cause, DeadlineExceeded, type CancelFunc, type Context } from "../../src/index.js";
import { CallCancelledError, callContext } from "../../src/grpc/index.js";
import { background } from "../../src/index.js";
import { useEchoServer, type Message } from "./echo.js";

/** What the handler made of one call: two contexts of the same call, and when each ended. */
interface Seen {
  call: grpc.ServerUnaryCall<Message, Message>;
  contexts: [Context, CancelFunc][];
  endedAt: number[];
}
let next: ((s: Seen) => void) | undefined;

const echo = useEchoServer(() => {
  const say = (
    call: grpc.ServerUnaryCall<Message, Message>,
    callback: grpc.sendUnaryData<Message>,
  ) => {
    const s: Seen = { call, contexts: [], endedAt: [] };
    // callContext twice on one call: each context follows the call on its own.
    for (let i = 0; i < 2; i++) {
      const [ctx, finish] = callContext(background(), call);
      s.contexts.push([ctx, finish]);
      void ctx.done()?.then(() => (s.endedAt[i] = Date.now()));
    }
    next?.(s);
    const wait = call.request.waitMs ?? 0;
    setTimeout(() => {
      for (const [, finish] of s.contexts) finish();
      callback(null, { text: call.request.text });
    }, wait);
  };
  return { say, count: say, collect: say, chat: say };
});

function nextCall(): Promise<Seen> {
  return new Promise((resolve) => (next = resolve));
}

type Say = (
  m: Message,
  o: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r?: Message) => void,
) => grpc.ClientUnaryCall;

describe("callContext", () => {
  test("two contexts of one call both end when the client cancels, and both listeners go", async () => {
    const seen = nextCall();
    const call = (echo.client.say as Say).call(
      echo.client,
      { text: "x", waitMs: 5_000 },
      {},
      () => {},
    );
    const s = await seen;
    call.cancel();
    await Promise.all(s.contexts.map(([ctx]) => ctx.done()));
    for (const [ctx] of s.contexts) {
      assert.ok(
        cause(ctx) instanceof CallCancelledError,
        `cause(ctx) = ${String(cause(ctx))}, want CallCancelledError`,
      );
    }
    assert.equal(
      s.call.listenerCount("cancelled"),
      0,
      "cancelled listeners left on the call, want none",
    );
  });

  test("ends at the caller's deadline with DeadlineExceeded, not before it", async () => {
    const seen = nextCall();
    const deadline = Date.now() + 200;
    const done = new Promise((resolve) =>
      (echo.client.say as Say).call(
        echo.client,
        { text: "x", waitMs: 2_000 },
        { deadline },
        resolve,
      ),
    );
    const s = await seen;
    await Promise.all(s.contexts.map(([ctx]) => ctx.done()));
    for (const [i, [ctx]] of s.contexts.entries()) {
      assert.equal(ctx.err(), DeadlineExceeded, `ctx.err() = ${String(ctx.err())}`);
      const at = (ctx.deadline() as Date).getTime();
      assert.ok(
        s.endedAt[i]! >= at - 1,
        `context ended ${at - s.endedAt[i]!} ms before its deadline, want at or after it`,
      );
      assert.ok(
        s.endedAt[i]! <= at + 1_000,
        `context ended ${s.endedAt[i]! - at} ms after its deadline, want within 1 s`,
      );
    }
    await done;
  });

  test("a call whose deadline is already past reads DeadlineExceeded from the start", async () => {
    // What a grpc-js client sends for 30 days ("2592000S"), the server's
    // grpc-js wraps into the past (`timeout | 0`); "0m" and "1n" are past on arrival.
    const session = http2.connect(`http://127.0.0.1:${echo.port}`);
    try {
      for (const timeout of ["0m", "1n", "2592000S"]) {
        const seen = nextCall();
        const stream = session.request({
          ":method": "POST",
          ":path": "/taproot.test.Echo/Say",
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": timeout,
        });
        stream.on("data", () => {});
        stream.end(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61])); // Message { text: "a" }
        const s = await seen;
        for (const [ctx] of s.contexts) {
          assert.equal(
            ctx.err(),
            DeadlineExceeded,
            `grpc-timeout ${timeout}: ctx.err() when the handler started = ${String(ctx.err())} (deadline ${(ctx.deadline()?.getTime() ?? NaN) - Date.now()} ms from now), want DeadlineExceeded`,
          );
        }
        assert.equal(
          s.call.listenerCount("cancelled"),
          0,
          "cancelled listeners on a call born done",
        );
        await new Promise((resolve) => stream.on("close", resolve));
      }
    } finally {
      session.close();
    }
  });
});
