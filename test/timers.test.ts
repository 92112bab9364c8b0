import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";
import { flush } from "./helpers.js";

const bg = context.background();

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Ref'd timers pending in the process (sleep and ticker keep the process alive, so they show here). */
const pendingTimers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  return String(err);
}

/** Settles p, failing the test if it takes longer than ms. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("sleep", () => {
  test("resolves with undefined after ms", async () => {
    const start = performance.now();
    const v = await within(context.sleep(bg, 50), 2000, "sleep(bg, 50)");
    const elapsed = performance.now() - start;
    assert.equal(v, undefined);
    assert.ok(
      elapsed >= 40,
      `sleep(bg, 50) resolved after ${elapsed.toFixed(1)} ms, want about 50`,
    );
  });

  test("with ms 0 resolves on a following turn", async () => {
    let resolved = false;
    const p = context.sleep(bg, 0).then(() => (resolved = true));
    assert.equal(resolved, false, "sleep(bg, 0) resolved synchronously");
    await within(p, 1000, "sleep(bg, 0)");
    assert.equal(resolved, true);
  });

  test("rejects with ctx.err() when the context is canceled first", async () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    const p = context.sleep(ctx, 60_000);
    setTimeout(() => cancel(new Error("a cause is not the rejection")), 10);
    await assert.rejects(within(p, 2000, "sleep after cancel"), (e: unknown) => {
      assert.equal(
        e,
        context.Canceled,
        `sleep rejected with ${name(e)}, want ctx.err() = Canceled`,
      );
      return true;
    });
  });

  test("rejects with DeadlineExceeded when the deadline comes first", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 10);
    await assert.rejects(
      within(context.sleep(ctx, 60_000), 2000, "sleep past deadline"),
      (e: unknown) => {
        assert.equal(
          e,
          context.DeadlineExceeded,
          `sleep rejected with ${name(e)}, want DeadlineExceeded`,
        );
        return true;
      },
    );
    cancel();
  });

  test("on a context already done, rejects at once with its err()", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    await assert.rejects(
      within(context.sleep(ctx, 60_000), 1000, "sleep on a done ctx"),
      (e: unknown) => {
        assert.equal(e, context.Canceled, `sleep rejected with ${name(e)}, want Canceled`);
        return true;
      },
    );
    await assert.rejects(
      within(context.sleep(ctx, 0), 1000, "sleep(done, 0)"),
      (e: unknown) => e === context.Canceled,
    );
  });

  test("resolves when the context outlives ms", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 3_600_000);
    await within(context.sleep(ctx, 5), 2000, "sleep(ctx, 5)");
    assert.equal(ctx.err(), null);
    cancel();
  });

  test("leaves no pending timer once it settles", async () => {
    const before = pendingTimers();
    const [ctx, cancel] = context.withCancel(bg);
    const sleeps = Array.from({ length: 20 }, () =>
      context.sleep(ctx, 60_000).catch((e: unknown) => e),
    );
    assert.ok(
      pendingTimers() > before,
      "sleep left no ref'd timer while pending (it must keep the process alive)",
    );
    cancel();
    await Promise.all(sleeps);
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after cancel, want 0`,
    );
    await context.sleep(bg, 1);
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after sleep resolved, want 0`,
    );
  });
});

describe("ticker", () => {
  test("yields the time of each tick, in epoch ms", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    const ticks: number[] = [];
    const run = (async () => {
      for await (const t of context.ticker(ctx, 10)) {
        ticks.push(t);
        if (ticks.length === 3) break;
      }
    })();
    await within(run, 3000, "3 ticks of 10 ms");
    assert.equal(ticks.length, 3);
    for (const t of ticks) {
      assert.equal(typeof t, "number");
      assert.ok(
        Math.abs(t - Date.now()) < 1000,
        `tick = ${t}, want about Date.now() = ${Date.now()}`,
      );
    }
    assert.ok(
      ticks[0]! <= ticks[1]! && ticks[1]! <= ticks[2]!,
      `ticks not in order: ${ticks.join(", ")}`,
    );
    cancel();
  });

  test("ticks no faster than its period", async () => {
    const ticks: number[] = [];
    const start = Date.now();
    for await (const t of context.ticker(bg, 30)) {
      ticks.push(t);
      if (ticks.length === 3) break;
    }
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 60, `3 ticks of 30 ms took ${elapsed} ms, want at least about 90`);
  });

  test("ends quietly when the context is canceled inside the loop", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 5)) {
          if (++n === 2) cancel();
        }
      })(),
      3000,
      "ticker after cancel",
    );
    assert.equal(n, 2, `got ${n} ticks, want 2: a ticker yields only while ctx is live`);
  });

  test("ends quietly when the context is canceled while it waits", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    setTimeout(cancel, 20);
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 60_000)) n++;
      })(),
      2000,
      "ticker(ctx, 60 s) after cancel",
    );
    assert.equal(n, 0);
  });

  test("ends quietly at the context's deadline", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 100);
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 5)) {
          n++;
          assert.equal(ctx.err(), null, "ticker yielded after the deadline");
        }
      })(),
      3000,
      "ticker until deadline",
    );
    assert.ok(n >= 1, `got ${n} ticks in 100 ms of 5 ms ticks, want some`);
    assert.equal(ctx.err(), context.DeadlineExceeded);
    cancel();
  });

  test("on a context already done, yields nothing", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 5)) n++;
      })(),
      1000,
      "ticker on a done ctx",
    );
    assert.equal(n, 0);
  });

  test("leaves no pending timer after break or cancel", async () => {
    const before = pendingTimers();
    for await (const _ of context.ticker(bg, 5)) break;
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after break, want 0`,
    );

    const [ctx, cancel] = context.withCancel(bg);
    const it = context.ticker(ctx, 60_000)[Symbol.asyncIterator]();
    const next = it.next();
    await flush();
    cancel();
    const r = await within(next, 1000, "next() after cancel");
    assert.equal(r.done, true, "next() after cancel did not end the iteration");
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after cancel, want 0`,
    );
  });

  test("keeps ticking after a slow iteration", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    const ticks: number[] = [];
    for await (const t of context.ticker(ctx, 5)) {
      ticks.push(t);
      if (ticks.length === 1) await delay(100);
      if (ticks.length === 3) break;
    }
    assert.equal(ticks.length, 3);
    cancel();
  });
});
