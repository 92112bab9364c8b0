import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  background,
  Canceled,
  createKey,
  sleep,
  withCancel,
  withValue,
  type Context,
} from "../../src/index.js";
import { every } from "../../src/fetch/index.js";
import { until } from "../helpers.js";

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/**
 * brokenContext is a user Context that breaks the contract: `done()` resolves
 * after `ms` while `err()` stays null ("settles-live"), or, its `done()`
 * pending, `err()` throws from `ms` on ("err-throws").
 */
function brokenContext(kind: "settles-live" | "err-throws", ms: number): Context {
  let broken = false;
  const done = new Promise<void>((resolve) =>
    setTimeout(() => {
      broken = true;
      if (kind === "settles-live") resolve();
    }, ms),
  );
  return {
    deadline: () => undefined,
    done: () => done,
    err: () => {
      if (broken && kind === "err-throws") throw new Error("err() is broken");
      return null;
    },
    value: () => undefined,
    signal: new AbortController().signal,
  };
}

describe("every", () => {
  it("runs fn every interval until canceled, then resolves with no timer left", async () => {
    const baseline = timers();
    const [ctx, cancel] = withCancel(background());
    const ticks: number[] = [];
    const worker = every(ctx, 20, (_ctx, tick) => void ticks.push(tick));
    await until(() => ticks.length >= 3, 2_000, "three runs");
    cancel();
    await worker;
    const n = ticks.length;
    await sleep(background(), 60);
    assert.equal(ticks.length, n, "runs after the worker stopped");
    assert.ok(ticks[1]! - ticks[0]! >= 20, `interval ${ticks[1]! - ticks[0]!} ms, want >= 20`);
    assert.equal(timers(), baseline, "timers left");
  });

  it("never overlaps runs: a slow run pushes the next to a later boundary", async () => {
    const [ctx, cancel] = withCancel(background());
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const worker = every(ctx, 10, async (runCtx) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(runCtx, 35).catch(() => {});
      running--;
      runs++;
    });
    await until(() => runs >= 3, 2_000, "three slow runs");
    cancel();
    await worker;
    assert.equal(maxRunning, 1, "runs at the same time");
  });

  it("cancels the run in progress by default, or lets it finish with inflight: 'finish'", async () => {
    for (const mode of ["cancel", "finish"] as const) {
      const [ctx, cancel] = withCancel(background());
      let started = false;
      let outcome = "";
      const worker = every(
        ctx,
        5,
        async (runCtx) => {
          started = true;
          try {
            await sleep(runCtx, 50);
            outcome = "finished";
          } catch (err) {
            outcome = err === Canceled ? "canceled" : String(err);
          }
        },
        { inflight: mode, immediate: true },
      );
      await until(() => started, 1_000, "the first run");
      cancel();
      await worker;
      assert.equal(outcome, mode === "cancel" ? "canceled" : "finished", `inflight: ${mode}`);
    }
  });

  it("reports a failed run and keeps going; the run sees ctx's values", async () => {
    const key = createKey<string>("queue");
    const [parent, cancel] = withCancel(background());
    const ctx: Context = withValue(parent, key, "jobs");
    const errors: unknown[] = [];
    const seen: (string | undefined)[] = [];
    const worker = every(
      ctx,
      5,
      (runCtx) => {
        seen.push(runCtx.value(key));
        if (seen.length === 1) throw new Error("broker unavailable");
      },
      { onError: (err) => errors.push(err), inflight: "finish" },
    );
    await until(() => seen.length >= 3, 2_000, "runs after the failure");
    cancel();
    await worker;
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /broker unavailable/);
    assert.deepEqual(seen.slice(0, 3), ["jobs", "jobs", "jobs"]);
  });

  it("resolves at once on a context that is already done, and explains bad arguments", async () => {
    const [ctx, cancel] = withCancel(background());
    cancel();
    let runs = 0;
    await every(ctx, 10, () => void runs++, { immediate: true });
    assert.equal(runs, 0);
    assert.throws(() => every(background(), 0, () => {}), {
      name: "RangeError",
      message: /every\(ctx, ms, fn, options\): ms must be above zero, got 0/,
    });
    assert.throws(() => every(background(), "1000" as never, () => {}), {
      message: /ms must be a number of milliseconds, got "1000" \(string\)/,
    });
    assert.throws(() => every(undefined as never, 10, () => {}), {
      message: /every\(ctx, ms, fn, options\): ctx is undefined; pass background\(\)/,
    });
    assert.throws(() => every(background(), 10, null as never), {
      message: /fn must be a function/,
    });
  });

  it("keeps its interval when the wall clock is stepped back an hour", async () => {
    const realNow = Date.now;
    const [ctx, cancel] = withCancel(background());
    const ticks: number[] = [];
    let runs = 0;
    const worker = every(ctx, 10, (_ctx, tick) => {
      runs++;
      ticks.push(tick);
      if (runs === 1) Date.now = () => realNow() - 3_600_000;
    });
    try {
      await until(() => runs >= 4, 3_000, "three runs after the wall clock stepped back");
    } finally {
      Date.now = realNow;
      cancel();
      await worker;
    }
    for (let i = 1; i < ticks.length; i++) {
      const gap = ticks[i]! - ticks[i - 1]!;
      assert.ok(gap > 0 && gap % 10 < 1e-6, `tick gap ${gap} ms, want a whole number of 10 ms`);
    }
  });

  it("runs every millisecond for an interval below 1 ms, without blocking the event loop", async () => {
    const [ctx, cancel] = withCancel(background());
    let runs = 0;
    const worker = every(ctx, 1e-5, () => void runs++);
    let timerFired = false;
    setTimeout(() => (timerFired = true), 5);
    await until(() => runs >= 5 && timerFired, 3_000, "five runs and a timer");
    cancel();
    await worker;
  });

  it("reports a broken context to onError and stops, instead of ending quietly", async () => {
    for (const kind of ["settles-live", "err-throws"] as const) {
      const errors: unknown[] = [];
      const ctx = brokenContext(kind, 20);
      let runs = 0;
      const outcome = await Promise.race([
        every(ctx, 5, () => void runs++, { onError: (err) => errors.push(err) }).then(
          () => "resolved",
        ),
        sleep(background(), 3_000).then(() => "still running"),
      ]);
      assert.equal(outcome, "resolved", `${kind}: every() ${outcome}, want resolved`);
      assert.equal(errors.length, 1, `${kind}: onError called ${errors.length} times, want 1`);
      const want =
        kind === "settles-live"
          ? /every\(ctx, ms, fn, options\): ctx's done\(\) settled but its err\(\) is still null/
          : /err\(\) is broken/;
      assert.match(String(errors[0]), want, `${kind}: onError got ${String(errors[0])}`);
    }
  });

  it("runs once an interval under node:test's mock.timers, which does not move performance.now()", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const [ctx, cancel] = withCancel(background());
    let runs = 0;
    const done = every(ctx, 100, () => void runs++);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    try {
      for (let interval = 1; interval <= 5; interval++) {
        await turn();
        t.mock.timers.tick(100);
        await turn();
        assert.equal(runs, interval, `runs after ${interval * 100} ms of mocked time`);
      }
    } finally {
      cancel();
      await done;
      t.mock.timers.reset();
    }
  });

  it("refuses an immediate option that is not a boolean", () => {
    for (const bad of ["yes", 1, null]) {
      assert.throws(() => every(background(), 10, () => {}, { immediate: bad as never }), {
        name: "TypeError",
        message: /^every\(ctx, ms, fn, options\): options.immediate must be true or false, got /,
      });
    }
  });

  it("refuses non-object options with a TypeError naming every", () => {
    for (const bad of [5, "finish", null, true]) {
      assert.throws(() => every(background(), 10, () => {}, bad as never), {
        name: "TypeError",
        message: /^every\(ctx, ms, fn, options\): options must be an object/,
      });
    }
  });
});
