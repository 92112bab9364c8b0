import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";
import { flush } from "./helpers.js";

const bg = context.background();

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  return String(err);
}

const listeners = (signal: AbortSignal) => getEventListeners(signal, "abort").length;

/** Collects process warnings emitted while fn runs (warnings are emitted on a later tick). */
async function warningsDuring(fn: () => void | Promise<void>): Promise<Error[]> {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    await fn();
    await flush();
    await flush();
  } finally {
    process.off("warning", onWarning);
  }
  return warnings;
}

describe("ctx.signal", () => {
  test("is an AbortSignal, the same object on every access", () => {
    const [ctx, cancel] = context.withCancel(bg);
    const s = ctx.signal;
    assert.ok(s instanceof AbortSignal, "signal is not an AbortSignal");
    assert.equal(ctx.signal, s, "signal changed between two reads");
    assert.equal(s.aborted, false);
    cancel();
    assert.equal(ctx.signal, s, "signal changed after cancel()");
  });

  test("for contexts that can never be canceled is one shared, never-aborting signal", () => {
    const [parent, cancel] = context.withCancel(bg);
    const never = [
      bg,
      context.todo(),
      context.withValue(bg, "k", 1),
      context.withoutCancel(parent),
      context.withValue(context.withoutCancel(parent), "k", 2),
    ];
    for (const c of never) {
      assert.equal(
        c.signal,
        bg.signal,
        `${String(c)}.signal is not the shared never-aborting signal`,
      );
    }
    cancel();
    for (const c of never) assert.equal(c.signal.aborted, false, `${String(c)}.signal aborted`);
  });

  test("is aborted with reason === err() when the context is done, however it is done", async () => {
    const why = new Error("why");
    const cases: [string, () => [Context, () => void]][] = [
      ["withCancel", () => context.withCancel(bg)],
      [
        "withCancelCause(cause)",
        () => {
          const [c, cancel] = context.withCancelCause(bg);
          return [c, () => cancel(why)];
        },
      ],
      ["withTimeout(0)", () => context.withTimeout(bg, 0)],
      ["withDeadline(past)", () => context.withDeadline(bg, Date.now() - 1)],
      ["withTimeoutCause(0, cause)", () => context.withTimeoutCause(bg, 0, why)],
    ];
    for (const [label, make] of cases) {
      const [ctx, cancel] = make();
      const early = ctx.signal;
      cancel();
      assert.equal(early.aborted, true, `${label}: signal.aborted = false`);
      assert.equal(
        early.reason,
        ctx.err(),
        `${label}: signal.reason = ${name(early.reason)}, want err() = ${name(ctx.err())}`,
      );
    }
    const [timed, cancel] = context.withTimeout(bg, 10);
    const s = timed.signal;
    // Deadline timers are unref'd: a ref'd timer keeps the event loop alive while we wait
    // (and fails the wait if the abort never comes).
    let guard: NodeJS.Timeout | undefined;
    await new Promise((resolve, reject) => {
      guard = setTimeout(() => reject(new Error("signal not aborted after 10 s")), 10_000);
      s.addEventListener("abort", resolve, { once: true });
    });
    clearTimeout(guard);
    assert.equal(
      s.reason,
      context.DeadlineExceeded,
      `signal.reason = ${name(s.reason)}, want DeadlineExceeded`,
    );
    cancel();
  });

  test("created after the context is done, is already aborted", () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    cancel(new Error("x"));
    assert.equal(ctx.signal.aborted, true);
    assert.equal(ctx.signal.reason, context.Canceled);
  });

  test("is created lazily: exactly one AbortController per context whose signal is read", (t) => {
    let created = 0;
    const Original = globalThis.AbortController;
    class Counting extends Original {
      constructor() {
        super();
        created++;
      }
    }
    const any = t.mock.method(AbortSignal, "any");
    const ac = new Original();
    globalThis.AbortController = Counting;
    t.after(() => {
      globalThis.AbortController = Original;
    });
    const made = () => {
      const [parent, cancel] = context.withCancel(bg);
      const [a] = context.withCancelCause(parent);
      const [b] = context.withTimeout(context.withValue(a, "k", 1), 3_600_000);
      const [c] = context.withSignal(b, ac.signal);
      return { parent, cancel, all: [parent, a, b, c] };
    };
    const untouched = made();
    untouched.cancel();
    assert.equal(
      created,
      0,
      `${created} AbortControllers created without .signal being read, want 0`,
    );
    const touched = made();
    for (const c of touched.all) void c.signal;
    for (const c of touched.all) void c.signal;
    assert.equal(
      created,
      touched.all.length,
      `${created} AbortControllers for ${touched.all.length} signals read, want one each`,
    );
    touched.cancel();
    assert.equal(created, touched.all.length, "canceling created more AbortControllers");
    assert.equal(any.mock.callCount(), 0, "AbortSignal.any() was used for propagation");
  });

  test("propagation goes through the tree, never through listeners on a parent's signal", () => {
    const [parent, cancel] = context.withCancel(bg);
    const ps = parent.signal;
    const children = Array.from({ length: 50 }, () => context.withCancel(parent)[0]);
    children.forEach((c) => c.signal);
    const [timed] = context.withTimeout(parent, 3_600_000);
    void timed.signal;
    const v = context.withValue(parent, "k", 1);
    void context.withCancel(v)[0].signal;
    assert.equal(listeners(ps), 0, `parent.signal has ${listeners(ps)} abort listeners, want 0`);
    cancel();
    children.forEach((c, i) => assert.equal(c.signal.aborted, true, `child #${i} not aborted`));
  });

  test("user abort listeners see the context already done", () => {
    const [ctx, cancel] = context.withCancel(bg);
    let err: unknown = "not called";
    ctx.signal.addEventListener("abort", () => (err = ctx.err()));
    cancel();
    assert.equal(err, context.Canceled);
  });
});

describe("withSignal", () => {
  test("refuses an object that only looks like a signal, naming withSignal and the fix", () => {
    for (const fake of [
      { aborted: false },
      { aborted: true, reason: "x" },
      { aborted: false, addEventListener() {} },
    ]) {
      assert.throws(() => context.withSignal(bg, fake as unknown as AbortSignal), {
        name: "TypeError",
        message:
          /^withSignal\(parent, signal\): signal must be an AbortSignal, got an object; pass request\.signal or controller\.signal$/,
      });
    }
  });

  test("is canceled when the signal aborts, with cause(child) === signal.reason", () => {
    const ac = new AbortController();
    const [ctx, cancel] = context.withSignal(bg, ac.signal);
    assert.equal(ctx.err(), null);
    assert.notEqual(ctx.done(), null);
    const own = ctx.signal;
    const reason = new Error("client went away");
    ac.abort(reason);
    assert.equal(ctx.err(), context.Canceled, `ctx.err() = ${name(ctx.err())}, want Canceled`);
    assert.equal(
      context.cause(ctx),
      reason,
      `cause(ctx) = ${name(context.cause(ctx))}, want signal.reason`,
    );
    assert.equal(own.reason, context.Canceled, "the child's own signal.reason is not its err()");
    assert.notEqual(own, ac.signal, "the child's signal is the outside signal");
    cancel();
  });

  test("abort() without a reason: err() Canceled, cause is the signal's AbortError", () => {
    const ac = new AbortController();
    const [ctx] = context.withSignal(bg, ac.signal);
    ac.abort();
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(context.cause(ctx), ac.signal.reason);
  });

  test('a reason named "TimeoutError" makes err() DeadlineExceeded', () => {
    const ac = new AbortController();
    const [ctx] = context.withSignal(bg, ac.signal);
    const reason = new DOMException("signal timed out", "TimeoutError");
    ac.abort(reason);
    assert.equal(
      ctx.err(),
      context.DeadlineExceeded,
      `ctx.err() = ${name(ctx.err())}, want DeadlineExceeded`,
    );
    assert.equal(context.cause(ctx), reason);
    assert.equal(ctx.signal.reason, context.DeadlineExceeded);
  });

  test("follows AbortSignal.timeout() as DeadlineExceeded", async () => {
    const signal = AbortSignal.timeout(10);
    const [ctx, cancel] = context.withSignal(bg, signal);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      ctx.done(),
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error("not done after 2 s")), 2000)),
      ),
    ]);
    clearTimeout(timer);
    assert.equal(
      ctx.err(),
      context.DeadlineExceeded,
      `ctx.err() = ${name(ctx.err())}, want DeadlineExceeded`,
    );
    assert.equal(context.cause(ctx), signal.reason);
    cancel();
  });

  test("a reason that throws when read (a revoked Proxy) still ends every follower, with Canceled", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const ac = new AbortController();
    const [a, cancelA] = context.withSignal(bg, ac.signal);
    const [b, cancelB] = context.withSignal(bg, ac.signal);
    ac.abort(proxy);
    for (const [n, c] of [
      ["a", a],
      ["b", b],
    ] as const) {
      assert.equal(c.err(), context.Canceled, `${n}.err() = ${String(c.err())}, want Canceled`);
      assert.equal(context.cause(c), proxy, `cause(${n}) is not the signal's reason`);
    }
    cancelA();
    cancelB();
    assert.equal(
      getEventListeners(ac.signal, "abort").length,
      0,
      "a listener is left on the signal",
    );
    const [born, cancelBorn] = context.withSignal(bg, AbortSignal.abort(proxy));
    assert.equal(born.err(), context.Canceled, `born.err() = ${String(born.err())}, want Canceled`);
    cancelBorn();
  });

  test("an already aborted signal makes a context born done", () => {
    const reason = { why: "early" };
    const [ctx, cancel] = context.withSignal(bg, AbortSignal.abort(reason));
    assert.equal(ctx.err(), context.Canceled, `ctx.err() = ${name(ctx.err())}, want Canceled`);
    assert.equal(context.cause(ctx), reason);
    assert.equal(ctx.signal.aborted, true);
    const [t] = context.withSignal(bg, AbortSignal.abort(new DOMException("t", "TimeoutError")));
    assert.equal(t.err(), context.DeadlineExceeded);
    cancel();
  });

  test("cancels its descendants synchronously when the signal aborts", () => {
    const ac = new AbortController();
    const [ctx] = context.withSignal(bg, ac.signal);
    const [child] = context.withCancel(ctx);
    const [grand] = context.withTimeout(context.withValue(child, "k", 1), 3_600_000);
    const reason = new Error("stop");
    ac.abort(reason);
    assert.equal(grand.err(), context.Canceled);
    assert.equal(context.cause(grand), reason);
  });

  test("follows its parent as well", () => {
    const ac = new AbortController();
    const [parent, cancelParent] = context.withCancelCause(bg);
    const [ctx] = context.withSignal(parent, ac.signal);
    const why = new Error("parent");
    cancelParent(why);
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(context.cause(ctx), why);
    ac.abort(new Error("later"));
    assert.equal(context.cause(ctx), why, "a later abort changed the cause");
  });

  test("an abort after the child's cancel changes nothing", () => {
    const ac = new AbortController();
    const [ctx, cancel] = context.withSignal(bg, ac.signal);
    cancel();
    ac.abort(new DOMException("t", "TimeoutError"));
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(context.cause(ctx), context.Canceled);
  });

  test("cancel removes its listener from the signal", () => {
    const ac = new AbortController();
    const base = listeners(ac.signal);
    const [, cancel] = context.withSignal(bg, ac.signal);
    cancel();
    assert.equal(
      listeners(ac.signal),
      base,
      `signal has ${listeners(ac.signal) - base} listeners after cancel, want 0`,
    );
  });

  test("being canceled any other way removes its listener from the signal", async () => {
    const ac = new AbortController();
    const [parent, cancelParent] = context.withCancel(bg);
    context.withSignal(parent, ac.signal);
    const [, cancelT] = context.withSignal(context.withTimeout(bg, 10)[0], ac.signal);
    cancelParent();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(
      listeners(ac.signal),
      0,
      `signal has ${listeners(ac.signal)} listeners after the children were canceled, want 0`,
    );
    cancelT();
  });

  test("a child born done adds no listener", () => {
    const ac = new AbortController();
    const [parent, cancel] = context.withCancel(bg);
    cancel();
    context.withSignal(parent, ac.signal);
    assert.equal(listeners(ac.signal), 0, `signal has ${listeners(ac.signal)} listeners, want 0`);
  });

  test("a long-lived signal never accumulates listeners as children come and go", async () => {
    const ac = new AbortController();
    const [parent, cancelParent] = context.withCancel(bg);
    const warnings = await warningsDuring(() => {
      for (let i = 0; i < 500; i++) {
        const [ctx, cancel] = context.withSignal(i % 2 ? parent : bg, ac.signal);
        void ctx.signal;
        cancel();
      }
      // A few at a time, overlapping.
      const live: (() => void)[] = [];
      for (let i = 0; i < 500; i++) {
        live.push(context.withSignal(bg, ac.signal)[1]);
        if (live.length > 5) live.shift()!();
      }
      live.forEach((cancel) => cancel());
    });
    assert.equal(listeners(ac.signal), 0, `signal has ${listeners(ac.signal)} listeners, want 0`);
    const max = warnings.filter((w) => w.name === "MaxListenersExceededWarning");
    assert.equal(
      max.length,
      0,
      `got ${max.length} MaxListenersExceededWarning: ${max.map((w) => w.message).join("; ")}`,
    );
    cancelParent();
  });

  test("a context's own signal passed to withSignal links two trees", () => {
    const [a, cancelA] = context.withCancelCause(bg);
    const [b, cancelB] = context.withSignal(bg, a.signal);
    const why = new Error("a");
    cancelA(why);
    assert.equal(b.err(), context.Canceled);
    assert.equal(
      context.cause(b),
      context.Canceled,
      `cause(b) = ${name(context.cause(b))}, want a.signal.reason (Canceled)`,
    );
    cancelB();
  });

  test("its cancel is idempotent and Disposable", () => {
    const ac = new AbortController();
    const [ctx, cancel] = context.withSignal(bg, ac.signal);
    {
      using _c = cancel;
    }
    cancel();
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(listeners(ac.signal), 0);
  });
});
