import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";

const bg = context.background();

describe("withValue", () => {
  test("the child returns the value for its key", () => {
    const key = context.createKey<string>("requestID");
    const ctx = context.withValue(bg, key, "abc");
    assert.equal(
      ctx.value(key),
      "abc",
      `ctx.value(requestID) = ${String(ctx.value(key))}, want "abc"`,
    );
  });

  test("other keys are looked up in the parent, and are undefined if no ancestor set them", () => {
    const a = context.createKey<number>("a");
    const b = context.createKey<number>("b");
    const c = context.createKey<number>("c");
    const ctx = context.withValue(context.withValue(bg, a, 1), b, 2);
    assert.equal(ctx.value(a), 1);
    assert.equal(ctx.value(b), 2);
    assert.equal(ctx.value(c), undefined, `ctx.value(c) = ${String(ctx.value(c))}, want undefined`);
  });

  test("the parent does not see the child's value", () => {
    const key = context.createKey<number>("k");
    const parent = context.withValue(bg, "other", 0);
    context.withValue(parent, key, 1);
    assert.equal(parent.value(key), undefined);
  });

  test("the nearest value shadows the ones above it", () => {
    const key = context.createKey<string>("k");
    const outer = context.withValue(bg, key, "outer");
    const inner = context.withValue(outer, key, "inner");
    assert.equal(inner.value(key), "inner");
    assert.equal(outer.value(key), "outer");
  });

  test("a value set to undefined shadows the one above it (as in Go)", () => {
    const key = context.createKey<number | undefined>("k");
    const outer = context.withValue(bg, key, 1);
    const inner = context.withValue(outer, key, undefined);
    assert.equal(
      inner.value(key),
      undefined,
      `inner.value(k) = ${String(inner.value(key))}, want undefined`,
    );
  });

  test("two keys with the same name are different keys", () => {
    const k1 = context.createKey<number>("same");
    const k2 = context.createKey<number>("same");
    assert.notEqual(k1, k2, "createKey returned the same key twice");
    const ctx = context.withValue(bg, k1, 1);
    assert.equal(
      ctx.value(k2),
      undefined,
      `value(other key with the same name) = ${String(ctx.value(k2))}, want undefined`,
    );
  });

  test("keys are compared with Object.is", () => {
    const obj = {};
    const sym = Symbol("s");
    let ctx: Context = bg;
    ctx = context.withValue(ctx, "str", "string key");
    ctx = context.withValue(ctx, obj, "object key");
    ctx = context.withValue(ctx, sym, "symbol key");
    ctx = context.withValue(ctx, NaN, "NaN key");
    ctx = context.withValue(ctx, 0, "zero key");
    assert.equal(ctx.value("str"), "string key");
    assert.equal(ctx.value(obj), "object key");
    assert.equal(ctx.value({}), undefined, "a different object matched an object key");
    assert.equal(ctx.value(sym), "symbol key");
    assert.equal(ctx.value(Symbol("s")), undefined, "a different symbol matched a symbol key");
    assert.equal(ctx.value(NaN), "NaN key", "NaN key not found (Object.is(NaN, NaN) is true)");
    assert.equal(ctx.value(0), "zero key");
    assert.equal(ctx.value(-0), undefined, "-0 matched key 0 (Object.is(0, -0) is false)");
    assert.equal(ctx.value("0"), undefined, 'string "0" matched key 0');
  });

  test("values are seen through every kind of descendant", () => {
    const key = context.createKey<string>("k");
    const sig = new AbortController();
    const base = context.withValue(bg, key, "v");
    const [c1, cancel1] = context.withCancel(base);
    const [c2, cancel2] = context.withCancelCause(c1);
    const [c3, cancel3] = context.withTimeout(c2, 3_600_000);
    const [c4, cancel4] = context.withDeadline(c3, Date.now() + 3_600_000);
    const c5 = context.withoutCancel(c4);
    const [c6, cancel6] = context.withSignal(c5, sig.signal);
    const c7 = context.withValue(c6, "other", 1);
    for (const c of [c1, c2, c3, c4, c5, c6, c7]) {
      assert.equal(c.value(key), "v", `${String(c)}: value(k) = ${String(c.value(key))}, want "v"`);
    }
    for (const cancel of [cancel1, cancel2, cancel3, cancel4, cancel6]) cancel();
    assert.equal(c7.value(key), "v", "value lost after cancel");
  });

  test("a lookup at depth 1000 finds the root-most value", () => {
    const key = context.createKey<string>("root");
    let ctx = context.withValue(bg, key, "deep");
    for (let i = 0; i < 1000; i++) ctx = context.withValue(ctx, i, i);
    assert.equal(ctx.value(key), "deep");
    assert.equal(ctx.value(500), 500);
    assert.equal(ctx.value(1000), undefined);
  });

  test("every level of a chain is found from every level below it, odd and even distances alike", () => {
    // The walk steps two levels per node it reads: check both halves of each step, the chain's
    // last level, and what lies above the chain (cancelable contexts, a user's context).
    const outer = context.createKey<string>("outer");
    const user: Context = {
      deadline: () => undefined,
      done: () => null,
      err: () => null,
      value: (key: unknown) => (key === outer ? "from the user's context" : undefined),
      signal: new AbortController().signal,
    };
    const keys = Array.from({ length: 9 }, (_, i) => context.createKey<number>(`k${i}`));
    const chain: Context[] = [];
    let ctx: Context = user;
    for (const [i, key] of keys.entries()) {
      ctx = context.withValue(ctx, key, i);
      if (i % 3 === 1) ctx = context.withCancel(ctx)[0];
      chain.push(ctx);
    }
    for (const [at, c] of chain.entries()) {
      for (const [i, key] of keys.entries()) {
        assert.equal(c.value(key), i <= at ? i : undefined, `level ${at}: value(k${i})`);
      }
      assert.equal(c.value(outer), "from the user's context", `level ${at}: value(outer)`);
      assert.equal(c.value(context.createKey("unset")), undefined, `level ${at}: unset key`);
    }
  });

  test("any value can be stored, including null and functions", () => {
    const fn = () => 1;
    assert.equal(context.withValue(bg, "k", null).value("k"), null);
    assert.equal(context.withValue(bg, "k", fn).value("k"), fn);
    assert.equal(context.withValue(bg, "k", 0).value("k"), 0);
  });

  test("is never canceled by itself: over background() done() is null", () => {
    const ctx = context.withValue(bg, "k", 1);
    assert.equal(ctx.done(), null);
    assert.equal(ctx.err(), null);
    assert.equal(ctx.deadline(), undefined);
    assert.equal(
      ctx.signal,
      bg.signal,
      "withValue(background()).signal is not the shared never-aborting signal",
    );
  });

  test("follows its parent's cancellation, synchronously", async () => {
    const [parent, cancel] = context.withCancelCause(bg);
    const ctx = context.withValue(parent, "k", 1);
    const signal = ctx.signal;
    assert.notEqual(ctx.done(), null, "withValue(cancelable).done() = null, want a Promise");
    const done = ctx.done()!;
    const why = new Error("why");
    cancel(why);
    assert.equal(ctx.err(), context.Canceled, `ctx.err() = ${String(ctx.err())}, want Canceled`);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, context.Canceled);
    assert.equal(context.cause(ctx), why);
    assert.equal(await done, undefined);
  });

  test("a withValue over a done parent is done", () => {
    const [parent, cancel] = context.withCancel(bg);
    cancel();
    const ctx = context.withValue(parent, "k", 1);
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(ctx.signal.aborted, true);
  });
});

describe("createKey", () => {
  test("returns a unique key each call", () => {
    const keys = new Set(Array.from({ length: 100 }, () => context.createKey<number>("k")));
    assert.equal(keys.size, 100);
  });
});
