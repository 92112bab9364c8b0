import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";

describe("background() and todo()", () => {
  test("return one and the same singleton", () => {
    assert.equal(context.background(), context.background(), "background() !== background()");
    assert.equal(context.todo(), context.todo(), "todo() !== todo()");
    assert.equal(
      context.background(),
      context.todo(),
      "background() !== todo(), want the same object",
    );
  });

  test("is frozen", () => {
    const bg = context.background();
    assert.equal(Object.isFrozen(bg), true, "Object.isFrozen(background()) = false, want true");
    assert.throws(() => {
      (bg as unknown as Record<string, unknown>).extra = 1;
    }, TypeError);
  });

  test("has no deadline, is never done, and never cancels", () => {
    const bg = context.background();
    assert.equal(bg.deadline(), undefined, `deadline() = ${String(bg.deadline())}, want undefined`);
    assert.equal(bg.done(), null, "done() is not null, want null");
    assert.equal(bg.err(), null, `err() = ${String(bg.err())}, want null`);
    assert.equal(context.cause(bg), null, "cause(background()) is not null, want null");
  });

  test("holds no values", () => {
    const bg = context.background();
    for (const key of [context.createKey("k"), "k", Symbol("k"), {}, 0, NaN, undefined, null]) {
      assert.equal(bg.value(key), undefined, `value(${String(key)}) is not undefined`);
    }
  });

  test("has a signal that is never aborted", () => {
    const bg = context.background();
    assert.ok(bg.signal instanceof AbortSignal, "signal is not an AbortSignal");
    assert.equal(bg.signal.aborted, false, "signal.aborted = true, want false");
    assert.equal(bg.signal, context.todo().signal, "background().signal !== todo().signal");
  });

  test('prints as "context.Background"', () => {
    assert.equal(String(context.background()), "context.Background");
    assert.equal(String(context.todo()), "context.Background");
    assert.equal(context.background().toString(), "context.Background");
  });

  test("survives deriving and canceling children", () => {
    const bg = context.background();
    const [, cancel] = context.withCancel(bg);
    const [, cancelT] = context.withTimeout(bg, 0);
    cancel();
    cancelT();
    assert.equal(bg.err(), null, `background().err() = ${String(bg.err())}, want null`);
    assert.equal(bg.signal.aborted, false, "background().signal.aborted = true, want false");
  });
});
