import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";
import { inspectTree } from "../src/tree-text.js";
import { flush } from "./helpers.js";

const bg = context.background();
const HOUR = 3_600_000;

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  return String(err);
}

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** A user's own Context: cancelable by hand, with its own error, values and deadline. */
class UserContext implements Context {
  #err: Error | null = null;
  #resolve!: () => void;
  readonly #done: Promise<void> | null;
  readonly #controller = new AbortController();
  readonly #values: Map<unknown, unknown>;
  readonly #deadline: Date | undefined;

  constructor(opts: { values?: [unknown, unknown][]; deadline?: Date; cancelable?: boolean } = {}) {
    this.#values = new Map(opts.values ?? []);
    this.#deadline = opts.deadline;
    this.#done = opts.cancelable === false ? null : new Promise<void>((r) => (this.#resolve = r));
  }

  deadline(): Date | undefined {
    return this.#deadline;
  }
  done(): Promise<void> | null {
    return this.#done;
  }
  err(): Error | null {
    return this.#err;
  }
  value(key: unknown): unknown {
    return this.#values.get(key);
  }
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  toString(): string {
    return "user.Context";
  }

  /** Ends this context with err, as the user's library would. */
  cancel(err: Error): void {
    if (this.#err !== null) return;
    this.#err = err;
    this.#controller.abort(err);
    this.#resolve();
  }
}

/** A user's wrapper that adds nothing but delegates everything, value() included, to a taproot context. */
class Wrapper implements Context {
  constructor(readonly inner: Context) {}
  deadline() {
    return this.inner.deadline();
  }
  done() {
    return this.inner.done();
  }
  err() {
    return this.inner.err();
  }
  value(key: unknown) {
    return this.inner.value(key);
  }
  get signal() {
    return this.inner.signal;
  }
  toString() {
    return `Wrapper(${String(this.inner)})`;
  }
}

/** Every derivation from a parent, with the cancel function when there is one. */
function children(parent: Context): [string, Context][] {
  const ac = new AbortController();
  return [
    ["withCancel", context.withCancel(parent)[0]],
    ["withCancelCause", context.withCancelCause(parent)[0]],
    ["withDeadline", context.withDeadline(parent, Date.now() + HOUR)[0]],
    ["withDeadlineCause", context.withDeadlineCause(parent, Date.now() + HOUR, "c")[0]],
    ["withTimeout", context.withTimeout(parent, HOUR)[0]],
    ["withTimeoutCause", context.withTimeoutCause(parent, HOUR, "c")[0]],
    ["withSignal", context.withSignal(parent, ac.signal)[0]],
    ["withValue", context.withValue(parent, "k", "v")],
  ];
}

describe("a user's own Context as parent", () => {
  test("its cancellation propagates to every kind of child through its done()", async () => {
    const user = new UserContext();
    const kids = children(user);
    const grandkids = kids.map(([n, c]): [string, Context] => [
      `${n}.WithCancel`,
      context.withCancel(c)[0],
    ]);
    await flush();
    for (const [n, c] of kids)
      assert.equal(c.err(), null, `${n}(user).err() = ${name(c.err())} before the user canceled`);
    const own = new Error("user's own error");
    user.cancel(own);
    await flush();
    for (const [n, c] of [...kids, ...grandkids]) {
      assert.equal(
        c.err(),
        own,
        `${n}(user).err() = ${name(c.err())}, want the user parent's own error`,
      );
      assert.equal(
        context.cause(c),
        own,
        `cause(${n}(user)) = ${name(context.cause(c))}, want the user parent's error`,
      );
      assert.equal(c.signal.reason, c.err(), `${n}(user).signal.reason !== err()`);
    }
  });

  test("a child of a user parent that is already done is born done, adopting its err()", () => {
    const user = new UserContext();
    const own = new Error("already over");
    user.cancel(own);
    for (const [n, c] of children(user)) {
      assert.equal(
        c.err(),
        own,
        `${n}(done user).err() = ${name(c.err())}, want the user's error at once`,
      );
      assert.equal(
        context.cause(c),
        own,
        `cause(${n}(done user)) = ${name(context.cause(c))}, want the user's error`,
      );
      assert.equal(c.signal.aborted, true);
    }
  });

  test("born done is checked through err(), even before done() settles", () => {
    // A parent whose err() is set but whose done() promise has not resolved yet.
    const own = new Error("err first");
    const user: Context = {
      deadline: () => undefined,
      done: () => new Promise<void>(() => {}),
      err: () => own,
      value: () => undefined,
      signal: AbortSignal.abort(own),
      toString: () => "odd",
    };
    const [child] = context.withCancel(user);
    assert.equal(child.err(), own, `child.err() = ${name(child.err())}, want the parent's err()`);
  });

  test("a user parent with done() null never cancels its children", async () => {
    const user = new UserContext({ cancelable: false });
    const [child, cancel] = context.withCancel(user);
    assert.notEqual(
      child.done(),
      null,
      "a withCancel child is cancelable, done() must not be null",
    );
    assert.equal(context.withValue(user, "k", 1).done(), null);
    await flush();
    assert.equal(child.err(), null);
    cancel();
    assert.equal(child.err(), context.Canceled);
  });

  test("canceling the child first keeps its own error; the parent is untouched", async () => {
    const user = new UserContext();
    const [child, cancel] = context.withCancelCause(user);
    const why = new Error("child");
    cancel(why);
    assert.equal(user.err(), null, "canceling the child reached the user parent");
    user.cancel(new Error("parent"));
    await flush();
    assert.equal(child.err(), context.Canceled);
    assert.equal(context.cause(child), why);
  });

  test("deadline() and value() are read from the user parent", () => {
    const d = new Date(Date.now() + HOUR);
    const user = new UserContext({ values: [["tenant", "acme"]], deadline: d });
    const [child, cancel] = context.withCancel(user);
    assert.equal(child.deadline()?.getTime(), d.getTime());
    assert.equal(child.value("tenant"), "acme");
    assert.equal(context.withValue(child, "x", 1).value("tenant"), "acme");
    const [later, cancelLater] = context.withDeadline(user, Date.now() + 2 * HOUR);
    assert.equal(
      later.deadline()?.getTime(),
      d.getTime(),
      "withDeadline extended the user parent's deadline",
    );
    const sooner = Date.now() + 1000;
    const [early, cancelEarly] = context.withDeadline(user, sooner);
    assert.equal(early.deadline()?.getTime(), sooner);
    cancel();
    cancelLater();
    cancelEarly();
  });

  test("afterFunc, sleep and ticker follow a user context", async () => {
    const user = new UserContext();
    let ran = 0;
    context.afterFunc(user, () => ran++);
    const slept = context.sleep(user, HOUR).then(
      () => "resolved",
      (e: unknown) => e,
    );
    const ticked = (async () => {
      let n = 0;
      for await (const _ of context.ticker(user, HOUR)) n++;
      return n;
    })();
    await flush();
    const own = new Error("stop");
    user.cancel(own);
    await flush();
    assert.equal(ran, 1, `afterFunc ran ${ran} times, want 1`);
    assert.equal(await slept, own, "sleep did not reject with the user context's err()");
    assert.equal(await ticked, 0);
  });

  test("children that end are let go: the user parent does not keep them", async () => {
    const user = new UserContext();
    const refs = makeAndCancel(user, 500);
    for (let i = 0; i < 3; i++) {
      await flush();
      gc();
    }
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    assert.equal(
      alive,
      0,
      `${alive} of ${refs.length} canceled children of a live user parent still reachable, want 0`,
    );
    user.cancel(new Error("end"));
  });

  test("holds no subscription per finished child: the heap does not grow with them", async () => {
    const user = new UserContext();
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        await flush();
        gc();
      }
      return v8.getHeapStatistics().used_heap_size;
    };
    churn(user, 10_000); // warm up
    const before = await settle();
    const n = 100_000;
    churn(user, n);
    const grown = (await settle()) - before;
    assert.ok(
      grown / n < 16,
      `heap grew ${grown} bytes over ${n} finished children of a live user parent (${(grown / n).toFixed(1)} B each), want under 16 B each`,
    );
    user.cancel(new Error("end"));
  });

  test("leaves no listener on the user parent's signal once its children end", async () => {
    const user = new UserContext();
    for (let i = 0; i < 20; i++) context.withCancel(user)[1]();
    await flush();
    const n = getEventListeners(user.signal, "abort").length;
    assert.equal(n, 0, `user.signal has ${n} abort listeners after its children ended, want 0`);
  });
});

/** Creates and cancels n children of parent. */
function churn(parent: Context, n: number): void {
  for (let i = 0; i < n; i++) context.withCancel(parent)[1]();
}

/** In its own function: a suspended async function's frame may keep its last locals alive. */
function makeAndCancel(parent: Context, n: number): WeakRef<object>[] {
  const refs: WeakRef<object>[] = [];
  for (let i = 0; i < n; i++) {
    const [a, cancelA] = context.withCancel(parent);
    const [b, cancelB] = context.withTimeout(parent, HOUR);
    a.done();
    refs.push(new WeakRef(a), new WeakRef(b));
    cancelA();
    cancelB();
  }
  return refs;
}

describe("a user wrapper that delegates value() to a taproot context", () => {
  test("is seen through by cause()", () => {
    const [inner, cancel] = context.withCancelCause(bg);
    const w = new Wrapper(inner);
    assert.equal(
      context.cause(w),
      null,
      `cause(wrapper) = ${name(context.cause(w))} while live, want null`,
    );
    const why = new Error("the real reason");
    cancel(why);
    assert.equal(
      context.cause(w),
      why,
      `cause(wrapper) = ${name(context.cause(w))}, want the inner context's cause`,
    );
  });

  test("is seen through by cause() over withValue links too", () => {
    const [inner, cancel] = context.withCancelCause(bg);
    const w = new Wrapper(context.withValue(context.withValue(inner, "a", 1), "b", 2));
    const why = { code: 42 };
    cancel(why);
    assert.equal(context.cause(w), why);
  });

  test("children of the wrapper get the inner cause", async () => {
    const [inner, cancel] = context.withCancelCause(bg);
    const w = new Wrapper(inner);
    const [child] = context.withCancel(w);
    const [timed] = context.withTimeout(w, HOUR);
    const why = new Error("inner");
    cancel(why);
    await flush();
    for (const c of [child, timed]) {
      assert.equal(c.err(), context.Canceled, `child.err() = ${name(c.err())}, want Canceled`);
      assert.equal(
        context.cause(c),
        why,
        `cause(child) = ${name(context.cause(c))}, want the inner cause`,
      );
    }
  });

  test("a child of a done wrapper is born done with the inner cause", () => {
    const [inner, cancel] = context.withCancelCause(bg);
    const why = new Error("before");
    cancel(why);
    const [child] = context.withCancel(new Wrapper(inner));
    assert.equal(child.err(), context.Canceled);
    assert.equal(context.cause(child), why);
  });

  test("a wrapper over withoutCancel has no cause", () => {
    const [inner, cancel] = context.withCancelCause(bg);
    cancel(new Error("hidden"));
    const w = new Wrapper(context.withoutCancel(inner));
    assert.equal(
      context.cause(w),
      null,
      `cause(wrapper(withoutCancel)) = ${name(context.cause(w))}, want null`,
    );
  });

  test("a user context that does not delegate value() has its err() as cause", () => {
    const user = new UserContext();
    assert.equal(context.cause(user), null);
    const own = new Error("own");
    user.cancel(own);
    assert.equal(context.cause(user), own);
  });
});

/**
 * A user's Context with one thing wrong, and otherwise whatever the test
 * says: `done` and `err` are the functions the context calls.
 */
function broken(parts: {
  done?: () => unknown;
  err?: () => unknown;
  deadline?: () => unknown;
}): Context {
  return {
    deadline: (parts.deadline ?? (() => undefined)) as () => Date | undefined,
    done: (parts.done ?? (() => null)) as () => Promise<void> | null,
    err: (parts.err ?? (() => null)) as () => Error | null,
    value: () => undefined,
    signal: new AbortController().signal,
    toString: () => "broken.Context",
  };
}

/** watchRejections runs body and fails if any promise rejection went unhandled meanwhile. */
async function watchRejections(body: () => Promise<void>): Promise<void> {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => seen.push(reason);
  process.on("unhandledRejection", onRejection);
  try {
    await body();
    await flush();
    await flush();
  } finally {
    process.off("unhandledRejection", onRejection);
  }
  assert.deepEqual(seen.map(String), [], "unhandled rejections");
}

describe("a user's Context that breaks the interface", () => {
  test("done() returning undefined or a number is a TypeError naming the function and the fix", () => {
    for (const bad of [undefined, 5]) {
      const user = broken({ done: () => bad });
      for (const [fn, make] of [
        ["withCancel(parent)", () => context.withCancel(user)],
        ["withTimeout(parent, ms)", () => context.withTimeout(user, HOUR)],
        [
          "withSignal(parent, signal)",
          () => context.withSignal(user, new AbortController().signal),
        ],
      ] as const) {
        assert.throws(make, {
          name: "TypeError",
          message: new RegExp(
            `^${fn.replace(/[()]/g, "\\$&")}: parent\\.done\\(\\) returned ${bad === 5 ? "5 \\(number\\)" : "undefined"}; a Context's done\\(\\) must return a Promise`,
          ),
        });
      }
      assert.throws(() => context.afterFunc(user, () => {}), {
        name: "TypeError",
        message: /^afterFunc\(ctx, f\): ctx\.done\(\) returned/,
      });
    }
  });

  test("a done() whose then() throws once leaves nothing behind: later children still follow the parent", async () => {
    let err: Error | null = null;
    let subscriptions = 0;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const user = broken({
      // A lazy thenable that fails its first subscription, as an adapter's may.
      done: () => ({
        then(onDone: () => void, onFail: (reason: unknown) => void) {
          if (subscriptions++ === 0) throw new Error("subscription failed");
          return settled.then(onDone, onFail);
        },
      }),
      err: () => err,
    });
    assert.throws(() => context.withCancel(user), { message: "subscription failed" });
    const [child, cancel] = context.withCancel(user);
    let ran = false;
    context.afterFunc(user, () => (ran = true));
    err = context.Canceled;
    settle();
    await flush();
    assert.equal(child.err(), context.Canceled, "the child did not follow its parent's end");
    assert.equal(ran, true, "afterFunc did not run at the parent's end");
    cancel();
  });

  test("deadline() returning a number or an invalid Date is a TypeError naming the function", () => {
    for (const [bad, shown] of [
      [Date.now() + HOUR, "\\d+ \\(number\\)"],
      [new Date(NaN), "an invalid Date"],
      ["soon", '"soon" \\(string\\)'],
    ] as const) {
      const user = broken({ deadline: () => bad, done: () => new Promise<void>(() => {}) });
      assert.throws(() => context.withCancel(user), {
        name: "TypeError",
        message: new RegExp(
          `^withCancel\\(parent\\): parent\\.deadline\\(\\) returned ${shown}; a Context's deadline\\(\\) must return a valid Date, or undefined`,
        ),
      });
      assert.throws(() => context.withValue(user, "k", 1), {
        name: "TypeError",
        message: /^withValue\(parent, key, val\): parent\.deadline\(\) returned/,
      });
    }
  });

  test("err() that throws once done cancels the child with Canceled and the thrown error as cause", async () => {
    await watchRejections(async () => {
      let finish!: () => void;
      let over = false;
      const thrown = new Error("err() is broken");
      const user = broken({
        done: () => donePromise,
        err: () => {
          if (over) throw thrown;
          return null;
        },
      });
      const donePromise = new Promise<void>((r) => (finish = r));
      const [child, cancel] = context.withCancel(user);
      over = true;
      finish();
      await flush();
      assert.equal(
        child.err(),
        context.Canceled,
        `child.err() = ${name(child.err())}, want Canceled`,
      );
      assert.equal(context.cause(child), thrown, "cause(child) is not what err() threw");
      // Born done the same way once the user's err() throws.
      const [late] = context.withCancel(user);
      assert.equal(late.err(), context.Canceled, `late.err() = ${name(late.err())}, want Canceled`);
      assert.equal(context.cause(late), thrown);
      cancel();
    });
  });

  test("done() that rejects cancels the child, with the rejection reason as cause, and nothing goes unhandled", async () => {
    await watchRejections(async () => {
      let fail!: (reason: unknown) => void;
      const reason = new Error("done() rejected");
      const donePromise = new Promise<void>((_, r) => (fail = r));
      const user = broken({ done: () => donePromise });
      const [child, cancel] = context.withCancel(user);
      const [grandchild] = context.withTimeout(child, HOUR);
      fail(reason);
      await flush();
      assert.equal(
        child.err(),
        context.Canceled,
        `child.err() = ${name(child.err())}, want Canceled`,
      );
      assert.equal(context.cause(child), reason);
      assert.equal(context.cause(grandchild), reason);
      cancel();
    });
  });

  test("inspectTree over a user context whose done() rejects leaves no unhandled rejection", async () => {
    await watchRejections(async () => {
      const user = broken({ done: () => Promise.reject(new Error("no")) });
      const text = inspectTree(context.withValue(user, "k", "v"));
      assert.match(text, /withValue · live/);
    });
  });

  test("done() that settles while err() is still null cancels the child with Canceled", async () => {
    const user = broken({ done: () => Promise.resolve() });
    const [child, cancel] = context.withCancel(user);
    await flush();
    assert.equal(
      child.err(),
      context.Canceled,
      `child.err() = ${name(child.err())}, want Canceled`,
    );
    assert.equal(context.cause(child), context.Canceled);
    cancel();
  });

  test("sleep over a context whose done() settles while err() is still null rejects with a TypeError, not null", async () => {
    const user = broken({ done: () => Promise.resolve() });
    await assert.rejects(context.sleep(user, 60_000), (err: unknown) => {
      assert.ok(err instanceof TypeError, `sleep rejected with ${String(err)}, want a TypeError`);
      assert.match(
        err.message,
        /^sleep\(ctx, ms\): ctx's done\(\) settled but its err\(\) is still null/,
      );
      return true;
    });
  });
});
