import { test } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import * as context from "../src/index.js";
import { flush } from "./helpers.js";

test("many live children of one signal share one listener, removed with the last", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    const ac = new AbortController();
    const cancels: context.CancelFunc[] = [];
    for (let i = 0; i < 500; i++)
      cancels.push(context.withSignal(context.background(), ac.signal)[1]);
    const got = getEventListeners(ac.signal, "abort").length;
    assert.equal(got, 1, `listeners on the signal = ${got}, want 1`);
    for (const cancel of cancels) cancel();
    const left = getEventListeners(ac.signal, "abort").length;
    assert.equal(left, 0, `listeners left after every cancel = ${left}, want 0`);
    await flush();
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(
    warnings.map((w) => w.name),
    [],
  );
});

test("an abort cancels every live follower and leaves no listener", () => {
  const ac = new AbortController();
  const ctxs = Array.from({ length: 50 }, () =>
    context.withSignal(context.background(), ac.signal),
  );
  const [, cancelOne] = ctxs[7]!;
  cancelOne();
  const reason = new Error("user left");
  ac.abort(reason);
  for (const [i, [ctx]] of ctxs.entries()) {
    assert.equal(
      ctx.err(),
      context.Canceled,
      `ctx ${i}: err() = ${String(ctx.err())}, want Canceled`,
    );
    if (i !== 7)
      assert.equal(context.cause(ctx), reason, `ctx ${i}: cause is not the abort reason`);
  }
  assert.equal(getEventListeners(ac.signal, "abort").length, 0);
});
