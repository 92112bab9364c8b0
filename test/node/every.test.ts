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
import { every } from "../../src/node/index.js";
import { until } from "../helpers.js";

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

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
});
