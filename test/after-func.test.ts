import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";
import { flush } from "./helpers.js";

const bg = context.background();

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("afterFunc", () => {
  test("calls f once, after the context is done, never inside cancel()", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let calls = 0;
    let errWhenCalled: unknown;
    context.afterFunc(ctx, () => {
      calls++;
      errWhenCalled = ctx.err();
    });
    await flush();
    assert.equal(calls, 0, "f ran before the context was done");
    cancel();
    assert.equal(calls, 0, "f ran inside cancel()");
    cancel();
    await flush();
    assert.equal(calls, 1, `f ran ${calls} times, want 1`);
    assert.equal(errWhenCalled, context.Canceled, "ctx.err() was not set when f ran");
    await delay(10);
    assert.equal(calls, 1, `f ran ${calls} times, want 1`);
  });

  test("on a context already done, calls f once, not inside afterFunc", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    let calls = 0;
    context.afterFunc(ctx, () => calls++);
    assert.equal(calls, 0, "f ran inside afterFunc()");
    await flush();
    assert.equal(calls, 1, `f ran ${calls} times, want 1`);
  });

  test("runs when a deadline passes", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 20);
    let ran = false;
    context.afterFunc(ctx, () => (ran = true));
    for (let i = 0; i < 200 && !ran; i++) await delay(10);
    assert.equal(ran, true, "f did not run within 2 s of a 20 ms deadline");
    cancel();
  });

  test("runs when an ancestor is canceled", async () => {
    const [root, cancel] = context.withCancel(bg);
    const ctx = context.withValue(context.withCancel(root)[0], "k", 1);
    let ran = 0;
    context.afterFunc(ctx, () => ran++);
    cancel();
    await flush();
    assert.equal(ran, 1);
  });

  test("every registered function runs once", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    const counts = Array.from({ length: 20 }, () => 0);
    counts.forEach((_, i) => context.afterFunc(ctx, () => counts[i]!++));
    cancel();
    await flush();
    assert.deepEqual(
      counts,
      Array.from({ length: 20 }, () => 1),
    );
  });

  test("stop() before the context is done returns true and f never runs", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let ran = false;
    const stop = context.afterFunc(ctx, () => (ran = true));
    assert.equal(stop(), true, "stop() = false before the context was done, want true");
    cancel();
    await flush();
    assert.equal(ran, false, "f ran after stop() returned true");
  });

  test("stop() a second time returns false", () => {
    const [ctx, cancel] = context.withCancel(bg);
    const stop = context.afterFunc(ctx, () => {});
    assert.equal(stop(), true);
    assert.equal(stop(), false, "second stop() = true, want false");
    cancel();
  });

  test("stop() after f ran returns false", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let ran = false;
    const stop = context.afterFunc(ctx, () => (ran = true));
    cancel();
    await flush();
    assert.equal(ran, true);
    assert.equal(stop(), false, "stop() = true after f ran, want false");
  });

  test("stop() from inside f returns false", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let inside: boolean | undefined;
    const stop = context.afterFunc(ctx, () => (inside = stop()));
    cancel();
    await flush();
    assert.equal(inside, false, `stop() inside f = ${String(inside)}, want false`);
  });

  test("stop()'s answer matches whether f runs, when called right after cancel()", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let ran = false;
    const stop = context.afterFunc(ctx, () => (ran = true));
    cancel();
    const stopped = stop();
    await flush();
    await delay(5);
    assert.equal(ran, !stopped, `stop() = ${stopped} but f ${ran ? "ran" : "did not run"}`);
  });

  test("stop()'s answer matches whether f runs, when the context was done before afterFunc", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    let ran = false;
    const stop = context.afterFunc(ctx, () => (ran = true));
    const stopped = stop();
    await flush();
    await delay(5);
    assert.equal(ran, !stopped, `stop() = ${stopped} but f ${ran ? "ran" : "did not run"}`);
  });

  test("stop()'s answer matches whether f runs, many times over", async () => {
    const results: [boolean, () => boolean][] = [];
    const cancels: (() => void)[] = [];
    for (let i = 0; i < 200; i++) {
      const [ctx, cancel] = context.withCancel(bg);
      const ran = { value: false };
      const stop = context.afterFunc(ctx, () => (ran.value = true));
      cancels.push(cancel);
      results.push([false, () => ran.value]);
      const when = i % 4;
      if (when === 0) results[i]![0] = stop();
      if (when >= 1) cancel();
      if (when === 1) results[i]![0] = stop();
      if (when === 2) queueMicrotask(() => (results[i]![0] = stop()));
      if (when === 3) setImmediate(() => (results[i]![0] = stop()));
    }
    for (const cancel of cancels) cancel();
    await flush();
    await delay(10);
    results.forEach(([stopped, ran], i) => {
      assert.equal(
        ran(),
        !stopped,
        `#${i}: stop() = ${stopped} but f ${ran() ? "ran" : "did not run"}`,
      );
    });
  });

  test("on a context that can never be canceled, stop() returns true and f never runs", async () => {
    const [parent, cancel] = context.withCancel(bg);
    for (const ctx of [
      bg,
      context.todo(),
      context.withValue(bg, "k", 1),
      context.withoutCancel(parent),
    ]) {
      let ran = false;
      const stop = context.afterFunc(ctx, () => (ran = true));
      cancel();
      await flush();
      assert.equal(ran, false, `f ran for ${String(ctx)}`);
      assert.equal(stop(), true, `stop() = false for ${String(ctx)}, want true`);
    }
  });

  test("a stopped afterFunc does not keep its context's parent busy", async () => {
    // Registering and stopping many times leaves the parent working normally.
    const [ctx, cancel] = context.withCancel(bg);
    for (let i = 0; i < 10_000; i++) context.afterFunc(ctx, () => {})();
    let ran = false;
    context.afterFunc(ctx, () => (ran = true));
    cancel();
    await flush();
    assert.equal(ran, true);
  });
});
