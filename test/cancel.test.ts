import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { describe, test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";
import { liveChildCount } from "../src/introspect.js";
import { flush } from "./helpers.js";

const bg = context.background();

/** Reports whether p has settled, without waiting for it beyond a macrotask turn. */
async function isSettled(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await flush();
  return settled;
}

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  return String(err);
}

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Counts how many of refs are still reachable after full collections. */
async function countAlive(refs: WeakRef<object>[]): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await flush();
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

/** Makes n children of each cancelable kind under parent, cancels them, returns weak refs to them. */
function makeAndCancelChildren(parent: Context, n: number): WeakRef<object>[] {
  const refs: WeakRef<object>[] = [];
  const sig = new AbortController();
  for (let i = 0; i < n; i++) {
    const [a, cancelA] = context.withCancel(parent);
    const [b, cancelB] = context.withCancelCause(parent);
    const [c, cancelC] = context.withTimeout(parent, 3_600_000);
    const [d, cancelD] = context.withSignal(parent, sig.signal);
    for (const x of [a, b, c, d]) {
      x.done();
      refs.push(new WeakRef(x));
    }
    cancelA();
    cancelB(new Error("done"));
    cancelC();
    cancelD();
  }
  return refs;
}

describe("withCancel", () => {
  test("returns a live context and a cancel function", () => {
    const [ctx, cancel] = context.withCancel(bg);
    assert.equal(typeof cancel, "function");
    assert.equal(ctx.err(), null, `ctx.err() = ${name(ctx.err())}, want null`);
    assert.equal(context.cause(ctx), null, "cause(ctx) is not null while live");
    assert.equal(ctx.deadline(), undefined);
    assert.equal(ctx.signal.aborted, false);
    cancel();
  });

  test("done() returns the same Promise on every call, resolving with undefined", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    const p = ctx.done();
    assert.ok(p instanceof Promise, "done() is not a Promise");
    assert.equal(ctx.done(), p, "done() returned a different Promise on the second call");
    assert.equal(await isSettled(p!), false, "done() settled before cancel()");
    cancel();
    assert.equal(ctx.done(), p, "done() returned a different Promise after cancel()");
    assert.equal(await p, undefined);
  });

  test("done() asked for the first time after cancel() is already resolving", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    const p = ctx.done();
    assert.ok(p instanceof Promise, "done() is not a Promise after cancel()");
    assert.equal(ctx.done(), p, "done() returned a different Promise on the second call");
    assert.equal(await isSettled(p), true, "done() did not resolve after cancel()");
  });

  test("cancel() sets err() and aborts the signal before it returns", () => {
    const [ctx, cancel] = context.withCancel(bg);
    const signal = ctx.signal;
    let reasonInListener: unknown = "not called";
    signal.addEventListener("abort", () => (reasonInListener = signal.reason));
    cancel();
    assert.equal(ctx.err(), context.Canceled, `ctx.err() = ${name(ctx.err())}, want Canceled`);
    assert.equal(signal.aborted, true, "signal.aborted = false after cancel() returned");
    assert.equal(signal.reason, ctx.err(), "signal.reason !== ctx.err()");
    assert.equal(reasonInListener, context.Canceled, "abort listener did not run inside cancel()");
    assert.equal(context.cause(ctx), context.Canceled, `cause(ctx) = ${name(context.cause(ctx))}`);
  });

  test("done() resolves in the microtasks that follow cancel(), not before it returns", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let resolved = false;
    void ctx.done()!.then(() => (resolved = true));
    cancel();
    assert.equal(resolved, false, "done() callback ran inside cancel()");
    await Promise.resolve();
    await Promise.resolve();
    await Promise.resolve();
    await flush();
    assert.equal(resolved, true, "done() not resolved one macrotask after cancel()");
  });

  test("cancel is idempotent: err() never changes afterwards", () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    const err = ctx.err();
    cancel();
    cancel();
    assert.equal(ctx.err(), err, "err() changed after a second cancel()");
    assert.equal(ctx.signal.reason, err);
  });

  test("cancels every descendant before cancel() returns", async () => {
    const [root, cancel] = context.withCancel(bg);
    const key = context.createKey<number>("k");
    const sig = new AbortController();
    const contexts: Context[] = [];
    const add = (c: Context) => (contexts.push(c), c);
    // One of each kind, chained.
    let c: Context = add(context.withCancel(root)[0]);
    c = add(context.withValue(c, key, 1));
    c = add(context.withTimeout(c, 3_600_000)[0]);
    c = add(context.withCancelCause(c)[0]);
    c = add(context.withSignal(c, sig.signal)[0]);
    c = add(context.withDeadline(c, Date.now() + 3_600_000)[0]);
    c = add(context.withTimeoutCause(c, 3_600_000, "late")[0]);
    add(context.withDeadlineCause(c, Date.now() + 3_600_000, "late")[0]);
    // Wide: a thousand siblings.
    for (let i = 0; i < 1000; i++) add(context.withCancel(root)[0]);
    // Deep: a chain of a thousand.
    let deep: Context = root;
    for (let i = 0; i < 1000; i++) deep = add(context.withCancel(deep)[0]);
    // Touch the signal and done() of a few, leave the rest lazy.
    const touched = contexts.filter((_, i) => i % 7 === 0);
    const signals = touched.map((t) => t.signal);
    const dones = touched.map((t) => t.done()!);

    cancel();

    contexts.forEach((d, i) => {
      assert.equal(
        d.err(),
        context.Canceled,
        `descendant #${i}.err() = ${name(d.err())}, want Canceled`,
      );
    });
    signals.forEach((s, i) => {
      assert.equal(s.aborted, true, `touched descendant #${i}: signal.aborted = false, want true`);
      assert.equal(s.reason, context.Canceled, `touched descendant #${i}: signal.reason !== err()`);
    });
    for (const [i, d] of contexts.entries()) {
      assert.equal(
        d.signal.reason,
        d.err(),
        `descendant #${i}: lazily created signal.reason !== err()`,
      );
    }
    await flush();
    for (const [i, p] of dones.entries()) {
      assert.equal(await isSettled(p), true, `touched descendant #${i}: done() not resolved`);
    }
  });

  test("a child of a done parent is born done", () => {
    const [parent, cancel] = context.withCancel(bg);
    cancel();
    const [child, cancelChild] = context.withCancel(parent);
    assert.equal(
      child.err(),
      context.Canceled,
      `child.err() = ${name(child.err())}, want Canceled`,
    );
    assert.equal(child.signal.aborted, true);
    assert.equal(child.signal.reason, context.Canceled);
    cancelChild();
    assert.equal(child.err(), context.Canceled);
  });

  test("canceling a child never affects its parent or siblings", () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const parentSignal = parent.signal;
    const [a, cancelA] = context.withCancel(parent);
    const [b, cancelB] = context.withCancelCause(parent);
    const [grand, cancelGrand] = context.withCancel(a);
    cancelGrand();
    cancelA();
    assert.equal(parent.err(), null, `parent.err() = ${name(parent.err())}, want null`);
    assert.equal(parentSignal.aborted, false, "parent.signal.aborted = true, want false");
    assert.equal(b.err(), null, `sibling.err() = ${name(b.err())}, want null`);
    assert.equal(grand.err(), context.Canceled);
    cancelB(new Error("b"));
    assert.equal(parent.err(), null, `parent.err() = ${name(parent.err())}, want null`);
    assert.equal(context.cause(parent), null);
    // The parent still works for new children.
    const [c] = context.withCancel(parent);
    assert.equal(c.err(), null);
    cancelParent();
    assert.equal(c.err(), context.Canceled);
    assert.equal(a.err(), context.Canceled);
  });

  test("a child inherits its parent's deadline", () => {
    const d = Date.now() + 3_600_000;
    const [parent, cancel] = context.withDeadline(bg, d);
    const [child] = context.withCancel(parent);
    assert.equal(child.deadline()?.getTime(), d, `child.deadline() = ${String(child.deadline())}`);
    cancel();
  });

  test("done() is null exactly when the context can never be canceled", () => {
    const key = context.createKey<string>("k");
    const [c, cancel] = context.withCancel(bg);
    assert.notEqual(c.done(), null, "withCancel(background()).done() = null");
    assert.notEqual(
      context.withValue(c, key, "v").done(),
      null,
      "withValue(cancelable).done() = null",
    );
    assert.equal(
      context.withValue(bg, key, "v").done(),
      null,
      "withValue(background()).done() not null",
    );
    assert.equal(context.withoutCancel(c).done(), null, "withoutCancel(ctx).done() not null");
    assert.equal(context.withValue(context.withoutCancel(c), key, "v").done(), null);
    assert.notEqual(context.withCancel(context.withoutCancel(c))[0].done(), null);
    cancel();
    assert.notEqual(c.done(), null, "done() became null after cancel");
  });

  test("contexts whose done() is never asked for create no Promise", () => {
    let promises = 0;
    const hook = createHook({
      init(_id, type) {
        if (type === "PROMISE") promises++;
      },
    }).enable();
    try {
      const [parent, cancelParent] = context.withCancel(bg);
      for (let i = 0; i < 10; i++) {
        const [c, cancel] = context.withCancelCause(parent);
        const v = context.withValue(c, "k", i);
        const [t, cancelT] = context.withTimeout(v, 3_600_000);
        void t.err();
        cancelT();
        cancel(new Error("x"));
      }
      context.withCancel(parent);
      cancelParent();
    } finally {
      hook.disable();
    }
    assert.equal(promises, 0, `${promises} Promises created without done() being called, want 0`);
  });

  test("a canceled child is detached from its parent at once", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    // Sanity: the collector runs.
    const sanity = [new WeakRef({})];
    assert.equal(await countAlive(sanity), 0, "gc() did not collect a plain object");

    // Made in a separate function: a suspended async function's frame may keep its last locals.
    const refs = makeAndCancelChildren(parent, 1000);
    const alive = await countAlive(refs);
    assert.equal(alive, 0, `${alive} of ${refs.length} canceled children still reachable, want 0`);
    assert.equal(parent.err(), null);
    cancelParent();
  });
});

describe("withCancelCause", () => {
  test("records the cause; err() is Canceled and the signal's reason is err()", () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    const why = new Error("shutting down");
    cancel(why);
    assert.equal(ctx.err(), context.Canceled, `ctx.err() = ${name(ctx.err())}, want Canceled`);
    assert.equal(
      context.cause(ctx),
      why,
      `cause(ctx) = ${name(context.cause(ctx))}, want the cause`,
    );
    assert.equal(ctx.signal.reason, context.Canceled, "signal.reason !== err()");
  });

  const empties: [string, [] | [undefined] | [null]][] = [
    ["no argument", []],
    ["undefined", [undefined]],
    ["null", [null]],
  ];
  for (const [label, arg] of empties) {
    test(`cancel with ${label} records Canceled as the cause`, () => {
      const [ctx, cancel] = context.withCancelCause(bg);
      cancel(...arg);
      assert.equal(
        context.cause(ctx),
        context.Canceled,
        `cause(ctx) = ${name(context.cause(ctx))}`,
      );
    });
  }

  test("falsy causes other than null and undefined are kept as they are", () => {
    for (const why of [0, "", false, NaN]) {
      const [ctx, cancel] = context.withCancelCause(bg);
      cancel(why);
      assert.ok(
        Object.is(context.cause(ctx), why),
        `cause(ctx) = ${name(context.cause(ctx))}, want ${String(why)}`,
      );
    }
  });

  test("the first cause wins; later cancels change nothing", () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    const first = new Error("first");
    cancel(first);
    cancel(new Error("second"));
    cancel();
    assert.equal(
      context.cause(ctx),
      first,
      `cause(ctx) = ${String(context.cause(ctx))}, want first`,
    );
    assert.equal(ctx.err(), context.Canceled);
  });

  test("descendants report the cause that reached them", () => {
    const [parent, cancel] = context.withCancelCause(bg);
    const [child] = context.withCancel(parent);
    const v = context.withValue(child, "k", 1);
    const [grand] = context.withTimeout(v, 3_600_000);
    const why = new Error("why");
    cancel(why);
    for (const [n, c] of [
      ["child", child],
      ["withValue", v],
      ["grandchild", grand],
    ] as const) {
      assert.equal(
        context.cause(c),
        why,
        `cause(${n}) = ${name(context.cause(c))}, want the parent's cause`,
      );
      assert.equal(c.err(), context.Canceled, `${n}.err() = ${name(c.err())}, want Canceled`);
    }
  });

  test("cause() is the first cause on the path: a child canceled first keeps its own", () => {
    const [parent, cancelParent] = context.withCancelCause(bg);
    const [child, cancelChild] = context.withCancelCause(parent);
    const [grand] = context.withCancel(child);
    const own = new Error("child");
    const later = new Error("parent");
    cancelChild(own);
    cancelParent(later);
    assert.equal(context.cause(child), own, "cause(child) is not the child's own cause");
    assert.equal(context.cause(grand), own, "cause(grandchild) is not the child's cause");
    assert.equal(context.cause(parent), later, "cause(parent) is not the parent's cause");
  });

  test("cause() is the first cause on the path: a child canceled later keeps the parent's", () => {
    const [parent, cancelParent] = context.withCancelCause(bg);
    const [child, cancelChild] = context.withCancelCause(parent);
    const first = new Error("parent");
    cancelParent(first);
    cancelChild(new Error("child"));
    assert.equal(context.cause(child), first, `cause(child) = ${String(context.cause(child))}`);
  });

  test("a child of a parent canceled with a cause is born with that cause", () => {
    const [parent, cancel] = context.withCancelCause(bg);
    const why = { reason: "gone" };
    cancel(why);
    const [child] = context.withCancelCause(parent);
    const [t] = context.withTimeout(parent, 1000);
    assert.equal(context.cause(child), why);
    assert.equal(context.cause(t), why);
    assert.equal(t.err(), context.Canceled);
  });
});

describe("cancel functions", () => {
  test("are Disposable, so `using` cancels at the end of the scope", () => {
    let ctx: Context;
    {
      const [c, cancel] = context.withCancel(bg);
      ctx = c;
      assert.equal(
        typeof cancel[Symbol.dispose],
        "function",
        "cancel[Symbol.dispose] is not a function",
      );
      using _cancel = cancel;
      assert.equal(ctx.err(), null, "canceled before the end of the scope");
    }
    assert.equal(
      ctx.err(),
      context.Canceled,
      `ctx.err() = ${name(ctx.err())} after the scope, want Canceled`,
    );
  });

  test("every kind of cancel function is Disposable", () => {
    const sig = new AbortController();
    const made: [string, Context, Disposable][] = [
      ["withCancel", ...context.withCancel(bg)],
      ["withCancelCause", ...context.withCancelCause(bg)],
      ["withDeadline", ...context.withDeadline(bg, Date.now() + 3_600_000)],
      ["withDeadlineCause", ...context.withDeadlineCause(bg, Date.now() + 3_600_000, "x")],
      ["withTimeout", ...context.withTimeout(bg, 3_600_000)],
      ["withTimeoutCause", ...context.withTimeoutCause(bg, 3_600_000, "x")],
      ["withSignal", ...context.withSignal(bg, sig.signal)],
    ];
    for (const [fn, ctx, cancel] of made) {
      {
        using _c = cancel;
      }
      assert.equal(
        ctx.err(),
        context.Canceled,
        `${fn}: err() = ${name(ctx.err())} after dispose, want Canceled`,
      );
      assert.equal(
        context.cause(ctx),
        context.Canceled,
        `${fn}: cause = ${name(context.cause(ctx))}, want Canceled`,
      );
      cancel[Symbol.dispose](); // idempotent
    }
  });

  test("withCancelCause's cancel disposed records Canceled as the cause", () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    cancel[Symbol.dispose]();
    assert.equal(context.cause(ctx), context.Canceled);
  });

  test("canceling again from inside an abort listener is harmless", () => {
    const [parent, cancel] = context.withCancel(bg);
    const [child] = context.withCancel(parent);
    let bornDone: unknown = "not run";
    child.signal.addEventListener("abort", () => {
      cancel();
      bornDone = context.withCancel(parent)[0].err();
    });
    cancel();
    assert.equal(
      bornDone,
      context.Canceled,
      "a child made inside the abort listener was not born done",
    );
    assert.equal(parent.err(), context.Canceled);
    assert.equal(child.err(), context.Canceled);
  });
});

describe("a parent's children", () => {
  // Go's XTestCancelRemoves: a child that ends is removed from its parent at once.
  test("every kind of child leaves the parent's list when it is canceled", () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const count = () => liveChildCount(parent);
    const ac = new AbortController();
    const kids: [string, () => void][] = [
      ["withCancel", context.withCancel(parent)[1]],
      ["withCancelCause", context.withCancelCause(parent)[1]],
      ["withTimeout", context.withTimeout(parent, 3_600_000)[1]],
      ["withDeadline", context.withDeadline(parent, Date.now() + 3_600_000)[1]],
      ["withSignal", context.withSignal(parent, ac.signal)[1]],
      ["withCancel over withValue", context.withCancel(context.withValue(parent, "k", "v"))[1]],
      ["afterFunc", context.afterFunc(parent, () => {})],
    ];
    assert.equal(count(), kids.length, `children after creating = ${count()}, want ${kids.length}`);
    let want = kids.length;
    for (const [kind, end] of kids) {
      end();
      want--;
      assert.equal(
        count(),
        want,
        `children after ending the ${kind} child = ${count()}, want ${want}`,
      );
    }
    cancelParent();
    assert.equal(count(), 0);
  });

  test("a child whose own deadline passes leaves the parent's list", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const [child] = context.withTimeout(parent, 1);
    assert.equal(liveChildCount(parent), 1);
    // Deadline timers are unref'd: a ref'd timer keeps the event loop alive while we wait
    // (Deno's test runner fails a test whose event loop empties), and fails a wait that never ends.
    let guard: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      child.done(),
      new Promise((_, reject) => {
        guard = setTimeout(() => reject(new Error("deadline not reached after 10 s")), 10_000);
      }),
    ]);
    clearTimeout(guard);
    assert.equal(
      liveChildCount(parent),
      0,
      `children after the deadline = ${liveChildCount(parent)}, want 0`,
    );
    cancelParent();
  });
});

describe("a frozen context", () => {
  const frozenError = (lead: RegExp) => ({
    name: "TypeError",
    message: new RegExp(
      `${lead.source} \\(Object\\.freeze\\); a cancelable context changes when it is canceled, so it must not be frozen`,
    ),
  });

  test("as a parent is a TypeError naming the function", () => {
    const [parent, cancel] = context.withCancel(bg);
    Object.freeze(parent);
    assert.throws(
      () => context.withCancel(parent),
      frozenError(/^withCancel\(parent\): parent is frozen/),
    );
    assert.throws(
      () => context.withTimeout(parent, 1_000),
      frozenError(/^withTimeout\(parent, ms\): parent is frozen/),
    );
    assert.throws(
      () => context.afterFunc(parent, () => {}),
      frozenError(/^afterFunc\(ctx, f\): ctx is frozen/),
    );
    assert.equal(liveChildCount(parent), 0, "a refused child stayed in the list");
    assert.throws(cancel, frozenError(/^cancel\(\): the context is frozen/));
  });

  test("for .signal or done() is a TypeError naming them", () => {
    const [ctx] = context.withCancel(bg);
    Object.freeze(ctx);
    assert.throws(() => ctx.signal, frozenError(/^ctx\.signal: the context is frozen/));
    assert.throws(() => ctx.done(), frozenError(/^ctx\.done\(\): the context is frozen/));
  });

  test("keeps working where it holds nothing that changes: background and withValue", () => {
    const [parent, cancel] = context.withCancel(bg);
    const value = Object.freeze(context.withValue(parent, "k", "v"));
    const [child] = context.withCancel(value);
    assert.equal(value.signal.aborted, false);
    cancel();
    assert.equal(child.err(), context.Canceled);
    assert.equal(value.err(), context.Canceled);
    assert.equal(value.signal.aborted, true);
  });

  test("following a signal: the other followers are still canceled when it aborts", () => {
    const ac = new AbortController();
    const [before, cancelBefore] = context.withSignal(bg, ac.signal);
    const [stuck, cancelStuck] = context.withSignal(bg, ac.signal);
    const [grandchild] = context.withCancel(stuck);
    const [after, cancelAfter] = context.withSignal(bg, ac.signal);
    Object.freeze(stuck);
    const reason = new Error("stop");
    ac.abort(reason);
    for (const [n, c] of [
      ["before", before],
      ["grandchild", grandchild],
      ["after", after],
    ] as const) {
      assert.equal(c.err(), context.Canceled, `${n}.err() = ${name(c.err())}, want Canceled`);
      assert.equal(context.cause(c), reason, `cause(${n}) is not the signal's reason`);
    }
    assert.equal(stuck.err(), null);
    cancelBefore();
    cancelAfter();
    assert.throws(cancelStuck, frozenError(/^cancel\(\): the context is frozen/));
  });

  test("under a user's context: its siblings are still canceled, and nothing is left unhandled", async () => {
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    let err: Error | null = null;
    const user: Context = {
      deadline: () => undefined,
      done: () => done,
      err: () => err,
      value: () => undefined,
      signal: new AbortController().signal,
    };
    const [before] = context.withCancel(user);
    const [stuck] = context.withCancel(user);
    const [grandchild] = context.withCancel(stuck);
    const [after] = context.withCancel(user);
    Object.freeze(stuck);
    const unhandled: unknown[] = [];
    const onRejection = (e: unknown): void => void unhandled.push(e);
    process.on("unhandledRejection", onRejection);
    try {
      err = context.Canceled;
      settle();
      await flush();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("unhandledRejection", onRejection);
    }
    assert.deepEqual(unhandled, [], "unhandled rejections after the user's context was done");
    for (const [n, c] of [
      ["before", before],
      ["grandchild", grandchild],
      ["after", after],
    ] as const)
      assert.equal(c.err(), context.Canceled, `${n}.err() = ${name(c.err())}, want Canceled`);
    assert.equal(stuck.err(), null);
  });

  test("under a parent that is canceled: the rest is canceled, then cancel() says which could not be", () => {
    const [parent, cancel] = context.withCancel(bg);
    const [before] = context.withCancel(parent);
    const [stuck] = context.withCancel(parent);
    const [grandchild] = context.withCancel(stuck);
    const [after] = context.withCancel(parent);
    Object.freeze(stuck);
    assert.throws(cancel, {
      name: "TypeError",
      message:
        /^cancel\(\): 1 frozen context\(s\) under this one stay live \(Object\.freeze\); a cancelable context changes when it is canceled/,
    });
    for (const [n, c] of [
      ["parent", parent],
      ["before", before],
      ["grandchild", grandchild],
      ["after", after],
    ] as const)
      assert.equal(c.err(), context.Canceled, `${n}.err() = ${name(c.err())}, want Canceled`);
    assert.equal(stuck.err(), null);
  });
});
