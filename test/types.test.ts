// Type-level tests: `npx tsc -p tsconfig.json --noEmit` (CI's typecheck) fails if a
// `@ts-expect-error` line compiles or if an exact-type check below is wrong. The file also
// runs as a normal test, so the valid lines are exercised at runtime.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";
import type { CancelCauseFunc, CancelFunc, Context, Key } from "../src/index.js";

/** true exactly when A and B are the same type. */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** `typeOf(v).is<T>()` compiles only when v's type is exactly T. */
function typeOf<V>(_value: V) {
  return { is: <T>(..._proof: Equal<V, T> extends true ? [] : ["type differs", V, T]) => {} };
}

const bg = context.background();

/** Lines that must not compile. Never called: their runtime behaviour is not the point. */
function mustNotCompile(ctx: Context, numberKey: Key<number>): void {
  // @ts-expect-error: a string is not a Context
  context.withCancel("ctx");
  // @ts-expect-error: a string is not a Context
  context.withTimeout("ctx", 100);
  // @ts-expect-error: a plain object is not a Context
  context.withValue({}, "k", 1);
  // @ts-expect-error: null is not a Context (pass background())
  context.withCancel(null);
  // @ts-expect-error: a string is not a Context
  context.sleep("ctx", 10);
  // @ts-expect-error: a Key<number> holds numbers, not strings
  context.withValue(ctx, numberKey, "str");
  // @ts-expect-error: a Key<number> holds numbers, not strings
  context.withValue(ctx, numberKey as Key<number>, "str");
  // @ts-expect-error: ms is a number
  context.withTimeout(ctx, "100");
  // @ts-expect-error: a deadline is a Date or epoch ms
  context.withDeadline(ctx, "2030-01-01");
  // @ts-expect-error: done() may be null (a context that can never be canceled)
  void ctx.done().then(() => {});
  // @ts-expect-error: value(numberKey) is number | undefined, not string
  const _s: string = ctx.value(numberKey);
  // @ts-expect-error: a Key<string> is not a Key<number>
  const _k: Key<number> = context.createKey<string>("s");
  // @ts-expect-error: signal is read-only
  ctx.signal = new AbortController().signal;
  // @ts-expect-error: a CancelFunc takes no cause
  context.withCancel(ctx)[1](new Error("cause"));
  // @ts-expect-error: afterFunc needs a function
  context.afterFunc(ctx, "f");
}

describe("types", () => {
  test("lines that must not compile are rejected by tsc (checked by the typecheck)", () => {
    assert.equal(typeof mustNotCompile, "function");
  });

  test("ctx.value(key) is typed by the key", () => {
    const numberKey = context.createKey<number>("n");
    const ctx = context.withValue(bg, numberKey, 42);
    const n = ctx.value(numberKey);
    typeOf(n).is<number | undefined>();
    assert.equal(n, 42);
    const u = ctx.value("untyped");
    typeOf(u).is<unknown>();
    const objKey = context.createKey<{ id: string }>("user");
    const user = context.withValue(ctx, objKey, { id: "ada" }).value(objKey);
    typeOf(user).is<{ id: string } | undefined>();
    assert.equal(user?.id, "ada");
  });

  test("withValue accepts the key's type and any value for other keys", () => {
    const numberKey = context.createKey<number>("n");
    const ctx: Context = context.withValue(bg, numberKey, 1);
    const withString: Context = context.withValue(ctx, "k", "any");
    const withSymbol: Context = context.withValue(ctx, Symbol("s"), { any: true });
    assert.equal(withString.value("k"), "any");
    assert.ok(withSymbol);
  });

  test("the function types are the contract's", () => {
    const [ctx, cancel] = context.withCancel(bg);
    typeOf(ctx).is<Context>();
    typeOf(cancel).is<CancelFunc>();
    const [, cancelCause] = context.withCancelCause(bg);
    typeOf(cancelCause).is<CancelCauseFunc>();
    cancelCause(new Error("any cause"));
    cancelCause();
    const [, cancelT] = context.withTimeout(bg, 1000);
    const [, cancelD] = context.withDeadline(bg, new Date(Date.now() + 1000));
    const [, cancelS] = context.withSignal(bg, new AbortController().signal);
    const stop = context.afterFunc(ctx, () => {});
    typeOf(stop).is<() => boolean>();
    const c = context.cause(ctx);
    typeOf(c).is<unknown>();
    const d = ctx.deadline();
    typeOf(d).is<Date | undefined>();
    const done = ctx.done();
    typeOf(done).is<Promise<void> | null>();
    const err = ctx.err();
    typeOf(err).is<Error | null>();
    const signal = ctx.signal;
    typeOf(signal).is<AbortSignal>();
    const slept = context.sleep(bg, 0);
    typeOf(slept).is<Promise<void>>();
    const ticks: AsyncIterable<number> = context.ticker(ctx, 1000);
    const canceled: Error = context.Canceled;
    const exceeded: Error = context.DeadlineExceeded;
    assert.ok(ticks && canceled && exceeded);
    // Cancel functions are Disposable, so `using` accepts them.
    const disposables: Disposable[] = [cancel, cancelCause, cancelT, cancelD, cancelS];
    {
      using _c = cancel;
    }
    for (const dispose of disposables) dispose[Symbol.dispose]();
    return slept;
  });

  test("a user's own class implements Context and is accepted as a parent", () => {
    class Mine implements Context {
      deadline(): Date | undefined {
        return undefined;
      }
      done(): Promise<void> | null {
        return null;
      }
      err(): Error | null {
        return null;
      }
      value(_key: unknown): unknown {
        return undefined;
      }
      readonly signal = new AbortController().signal;
      toString(): string {
        return "mine";
      }
    }
    const [child, cancel] = context.withCancel(new Mine());
    assert.equal(String(child), "mine.WithCancel");
    cancel();
  });

  test("background() and todo() are Contexts", () => {
    const a: Context = context.background();
    const b: Context = context.todo();
    assert.equal(a, b);
  });
});
