import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";
import { flush } from "./helpers.js";

const bg = context.background();

describe("withoutCancel", () => {
  test("keeps the parent's values", () => {
    const key = context.createKey<string>("user");
    const [parent, cancel] = context.withCancel(context.withValue(bg, key, "ada"));
    const ctx = context.withoutCancel(parent);
    assert.equal(ctx.value(key), "ada", `value(user) = ${String(ctx.value(key))}, want "ada"`);
    cancel();
    assert.equal(ctx.value(key), "ada", "value lost after the parent was canceled");
  });

  test("is never canceled, has no deadline, and done() is null", async () => {
    const [parent, cancel] = context.withTimeoutCause(bg, 3_600_000, "why");
    const ctx = context.withoutCancel(parent);
    assert.equal(ctx.done(), null, "done() is not null");
    assert.equal(
      ctx.deadline(),
      undefined,
      `deadline() = ${String(ctx.deadline())}, want undefined`,
    );
    const signal = ctx.signal;
    cancel();
    await flush();
    assert.equal(
      ctx.err(),
      null,
      `err() = ${String(ctx.err())} after the parent was canceled, want null`,
    );
    assert.equal(context.cause(ctx), null, `cause(ctx) = ${String(context.cause(ctx))}, want null`);
    assert.equal(signal.aborted, false, "signal aborted after the parent was canceled");
    assert.equal(ctx.done(), null);
  });

  test("its signal is the shared never-aborting signal", () => {
    const [parent, cancel] = context.withCancel(bg);
    const ctx = context.withoutCancel(parent);
    assert.equal(ctx.signal, bg.signal, "withoutCancel(ctx).signal is not background().signal");
    cancel();
    assert.equal(ctx.signal.aborted, false);
  });

  test("is live even over a parent that is already done", () => {
    const [parent, cancel] = context.withCancelCause(bg);
    cancel(new Error("gone"));
    const ctx = context.withoutCancel(parent);
    assert.equal(ctx.err(), null);
    assert.equal(context.cause(ctx), null);
    assert.equal(ctx.signal.aborted, false);
  });

  test("cuts the cancellation from above but its children can be canceled", () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const detached = context.withoutCancel(parent);
    const [child, cancelChild] = context.withCancel(detached);
    const [timed, cancelTimed] = context.withTimeout(detached, 3_600_000);
    assert.notEqual(child.done(), null);
    cancelParent();
    assert.equal(
      child.err(),
      null,
      `child.err() = ${String(child.err())} after the grandparent was canceled, want null`,
    );
    assert.equal(timed.err(), null);
    assert.ok(timed.deadline() instanceof Date, "withTimeout under withoutCancel has no deadline");
    cancelChild();
    assert.equal(child.err(), context.Canceled);
    assert.equal(detached.err(), null, "canceling a child reached withoutCancel");
    cancelTimed();
  });

  test("a child with a deadline does not inherit the parent's deadline", () => {
    const [parent, cancel] = context.withTimeout(bg, 1000);
    const [child, cancelChild] = context.withCancel(context.withoutCancel(parent));
    assert.equal(child.deadline(), undefined);
    cancel();
    cancelChild();
  });

  test("values added above and below both resolve", () => {
    const a = context.createKey<number>("a");
    const b = context.createKey<number>("b");
    const ctx = context.withValue(context.withoutCancel(context.withValue(bg, a, 1)), b, 2);
    assert.equal(ctx.value(a), 1);
    assert.equal(ctx.value(b), 2);
    assert.equal(ctx.done(), null);
  });
});
