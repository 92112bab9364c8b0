import assert from "node:assert/strict";
import http from "node:http";
import { Session } from "node:inspector/promises";
import { describe, it } from "node:test";
import {
  formatConnectTimeout,
  formatGrpcTimeout,
  headerBudget,
} from "../../src/fetch/deadline-header.js";
import { background, cause, DeadlineExceeded, sleep, withTimeout } from "../../src/index.js";
import { DeadlineQueue } from "../../src/fetch/request-context.js";
import {
  fetchWithContext,
  requestContext,
  RequestTimeoutError,
  serve,
} from "../../src/node/index.js";
import { loopback, until } from "../helpers.js";
import { get, startAbandoned } from "./helpers.js";

/** liveQueues counts the DeadlineQueue objects on the heap, after a full collection (the inspector's queryObjects). */
async function liveQueues(): Promise<number> {
  const session = new Session();
  session.connect();
  try {
    const global = globalThis as { taprootDeadlineQueue?: unknown };
    global.taprootDeadlineQueue = DeadlineQueue;
    const proto = await session.post("Runtime.evaluate", {
      expression: "globalThis.taprootDeadlineQueue.prototype",
    });
    delete global.taprootDeadlineQueue;
    const found = await session.post("Runtime.queryObjects", {
      prototypeObjectId: proto.result.objectId!,
    });
    const length = await session.post("Runtime.callFunctionOn", {
      objectId: found.objects.objectId!,
      functionDeclaration: "function () { return this.length; }",
      returnByValue: true,
    });
    return length.result.value as number;
  } finally {
    session.disconnect();
  }
}

describe("deadline headers", () => {
  it("reads connect-timeout-ms and grpc-timeout, smallest first", () => {
    const cases: [string | string[] | undefined, string | undefined, number | undefined][] = [
      ["250", undefined, 250],
      ["0", undefined, 0],
      ["9999999999", undefined, 9_999_999_999],
      [undefined, "2S", 2_000],
      [undefined, "1H", 3_600_000],
      [undefined, "3M", 180_000],
      [undefined, "1500u", 1],
      [undefined, "999999n", 0],
      ["500", "2S", 500],
      ["5000", "2S", 2_000],
      ["300, 100", undefined, 100],
      [["300", "100"], undefined, 100],
      ["100, garbage", undefined, 100],
    ];
    for (const [connect, grpc, want] of cases) {
      const got = headerBudget(connect, grpc)?.ms;
      assert.equal(
        got,
        want,
        `headerBudget(${JSON.stringify(connect)}, ${grpc}) = ${got}, want ${want}`,
      );
    }
  });

  it("ignores malformed values", () => {
    const bad = [
      "",
      "-5",
      "abc",
      "1e3",
      "0x10",
      "1.5",
      "12345678901",
      "+5",
      "5 5",
      "Infinity",
      "NaN",
    ];
    for (const v of bad) {
      assert.equal(
        headerBudget(v, undefined),
        undefined,
        `connect-timeout-ms ${JSON.stringify(v)}`,
      );
    }
    const badGrpc = ["5", "5s", "123456789m", "-1S", "1.5S", "S", "1 S", "5x"];
    for (const v of badGrpc) {
      assert.equal(headerBudget(undefined, v), undefined, `grpc-timeout ${JSON.stringify(v)}`);
    }
  });

  it("writes whole milliseconds, rounding down, in at most 8 digits for gRPC", () => {
    assert.equal(formatConnectTimeout(1234.9), "1234");
    assert.equal(formatConnectTimeout(1e15), "9999999999");
    assert.equal(formatGrpcTimeout(1234.9), "1234m");
    assert.equal(formatGrpcTimeout(99_999_999), "99999999m");
    assert.equal(formatGrpcTimeout(100_000_000.5), "100000S");
    assert.equal(formatGrpcTimeout(1e14), "27777777H");
  });

  it("never crashes the server and never extends a deadline, whatever the header says", async () => {
    const budgets: number[] = [];
    const app = serve(
      (ctx, _req, res) => {
        budgets.push(ctx.deadline()!.getTime() - Date.now());
        res.end("ok");
      },
      { timeout: 1_000 },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    const values = [
      "-1",
      "99999999999999999999",
      "9999999999",
      "garbage",
      "1e9",
      "",
      "  ",
      "100000, 9999999999",
      "NaN",
      "\u00e9",
    ];
    try {
      for (const v of values) {
        const r = await get(port, "/", { headers: { "connect-timeout-ms": v, "grpc-timeout": v } });
        assert.equal(r.status, 200, `status with header ${JSON.stringify(v)}`);
      }
      // Repeated header lines: Node joins them; the smallest counts.
      const repeated = await get(port, "/", {
        headers: { "connect-timeout-ms": ["5000000", "99999999999", "x"] },
      });
      assert.equal(repeated.status, 200);
      for (const [i, b] of budgets.entries()) {
        assert.ok(b <= 1_000, `request ${i}: budget ${b} ms, want <= the server's 1,000`);
      }
    } finally {
      await app.shutdown();
    }
  });

  it("shortens the deadline to the caller's budget, clamped to maxHeaderTimeout", async () => {
    const seen: { budget: number; why: unknown }[] = [];
    const app = serve(
      async (ctx, _req, res) => {
        const budget = ctx.deadline()!.getTime() - Date.now();
        await ctx.done();
        seen.push({ budget, why: cause(ctx) });
        res.end();
      },
      { maxHeaderTimeout: 200 },
    );
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      await get(port, "/", { headers: { "connect-timeout-ms": "50" } });
      await get(port, "/", { headers: { "grpc-timeout": "1H" } });
      const [short, clamped] = seen;
      assert.ok(short!.budget <= 50 && short!.budget > 0, `budget ${short!.budget}, want <= 50`);
      const why = short!.why;
      assert.ok(why instanceof RequestTimeoutError && why.source === "connect-timeout-ms");
      assert.ok(clamped!.budget <= 200 && clamped!.budget > 100, `clamped ${clamped!.budget}`);
    } finally {
      await app.shutdown();
    }
  });

  it("keeps no queue for header budgets that a parent's sooner deadline overrides", async () => {
    const [parent, cancel] = withTimeout(background(), 60_000);
    const want = parent.deadline()!.getTime();
    const deadlines: number[] = [];
    // requestContext, not serve(): serve's requests keep the parent's values, not its deadline.
    const server = http.createServer((req, res) => {
      deadlines.push(requestContext(req, res, { context: parent }).deadline()!.getTime());
      res.end();
    });
    const { port, close } = await loopback(server);
    const agent = new http.Agent({ keepAlive: true });
    try {
      const before = await liveQueues();
      // Every budget a different one, each longer than the parent's minute.
      for (let i = 0; i < 100; i++) {
        const headers =
          i % 2 === 0
            ? { "connect-timeout-ms": String(100_000 + i) }
            : { "grpc-timeout": `${100 + i}S` };
        assert.equal((await get(port, "/", { agent, headers })).status, 200);
      }
      const after = await liveQueues();
      assert.ok(
        after - before < 5,
        `${after - before} deadline queues left by 100 budgets, want 0`,
      );
      for (const [i, d] of deadlines.entries()) {
        assert.equal(d, want, `request ${i}: deadline ${d}, want the parent's ${want}`);
      }
    } finally {
      agent.destroy();
      await close();
      cancel();
    }
  });

  it("can ignore deadline headers altogether", async () => {
    const app = serve((ctx, _req, res) => void res.end(String(ctx.deadline())), {
      deadlineHeaders: false,
    });
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      const r = await get(port, "/", { headers: { "connect-timeout-ms": "10" } });
      assert.equal(r.body, "undefined");
    } finally {
      await app.shutdown();
    }
  });

  it("carries one deadline through A -> B -> C, and a disconnect at A cancels C", async () => {
    const deadlines: Record<string, number> = {};
    let cCanceled: unknown = null;
    const c = serve(async (ctx, req, res) => {
      deadlines.c = ctx.deadline()?.getTime() ?? NaN;
      if (req.url === "/wait") {
        await ctx.done();
        cCanceled = cause(ctx);
      }
      res.end("c");
    });
    const cAddr = await c.listen(0, "127.0.0.1");
    const b = serve(async (ctx, req, res) => {
      deadlines.b = ctx.deadline()?.getTime() ?? NaN;
      const r = await fetchWithContext(ctx, `http://127.0.0.1:${cAddr.port}${req.url}`);
      res.end(`b${await r.text()}`);
    });
    const bAddr = await b.listen(0, "127.0.0.1");
    const a = serve(
      async (ctx, req, res) => {
        deadlines.a = ctx.deadline()!.getTime();
        const r = await fetchWithContext(ctx, `http://127.0.0.1:${bAddr.port}${req.url}`);
        res.end(`a${await r.text()}`);
      },
      { timeout: 5_000 },
    );
    const aAddr = await a.listen(0, "127.0.0.1");
    try {
      // The first fetch of a process loads undici (100+ ms on Node 20); a
      // relative budget counts that time as transit, so measure the second.
      assert.equal((await get(aAddr.port, "/")).body, "abc");
      assert.equal((await get(aAddr.port, "/")).body, "abc");
      // Each hop reads "time left" when it sends and starts counting when it
      // receives: the deadline moves by the transit time, a few ms on loopback.
      const skewB = Math.abs(deadlines.a! - deadlines.b!);
      const skewC = Math.abs(deadlines.a! - deadlines.c!);
      assert.ok(skewB < 50, `B's deadline is ${skewB} ms off A's, want < 50`);
      assert.ok(skewC < 50, `C's deadline is ${skewC} ms off A's, want < 50`);

      const client = startAbandoned(aAddr.port, "/wait");
      await until(() => c.inflight().length === 1, 2_000, "the request to reach C");
      client.abort();
      await until(() => cCanceled !== null, 2_000, "C's context to be canceled");
      assert.ok(cCanceled instanceof Error, `C's cause = ${String(cCanceled)}`);
      assert.match(String(cCanceled), /ClientDisconnectedError/);
    } finally {
      await Promise.all([a.shutdown(), b.shutdown(), c.shutdown()]);
    }
  });

  it("fails locally with DeadlineExceeded when no budget is left, without sending", async () => {
    let received = 0;
    const app = serve((_ctx, _req, res) => {
      received++;
      res.end();
    });
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      const [ctx, cancel] = withTimeout(background(), 5);
      await new Promise((r) => setTimeout(r, 20)); // past the deadline, timer or not
      await assert.rejects(fetchWithContext(ctx, `http://127.0.0.1:${port}/`), (err) => {
        assert.equal(err, DeadlineExceeded);
        return true;
      });
      cancel();
      assert.equal(received, 0, "requests the server received");
      await sleep(background(), 0);
    } finally {
      await app.shutdown();
    }
  });
});
