import type { Context } from "./context.js";
import { cancelCtxKey, deadlineOf } from "./context.js";
import { CancelCtx } from "./cancel-ctx.js";
import { hooks } from "./debug-hooks.js";
import { Canceled } from "./errors.js";
import { adopt, attach } from "./propagate.js";
import { checkContext } from "./validate.js";

/**
 * CancelFunc cancels its context and every descendant, synchronously. It is
 * idempotent, and a `Disposable`: declare it with `using` and the context is
 * canceled when the scope ends.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withTimeout(parent, 1_000);
 * using _ = cancel; // canceled when the block ends, like Go's defer cancel()
 * await work(ctx);
 * ```
 */
export type CancelFunc = (() => void) & Disposable;

/**
 * CancelCauseFunc is a {@link CancelFunc} that records why: `cause(ctx)`
 * returns the first cause given (`undefined` or `null` record `Canceled`).
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancelCause(parent);
 * socket.on("error", (err) => cancel(err)); // cause(ctx) === err
 * ```
 */
export type CancelCauseFunc = ((cause?: unknown) => void) & Disposable;

const DISPOSE: typeof Symbol.dispose =
  Symbol.dispose ?? (Symbol.for("Symbol.dispose") as typeof Symbol.dispose);

/**
 * cancelable links a new cancelable context under parent (or finds it born
 * done) and makes its cancel function: `cancel` bound to it, by default the
 * one that ignores a cause.
 */
export function cancelable(
  fn: string,
  c: CancelCtx,
  parent: Context,
  cancel: (this: CancelCtx, why?: unknown) => void = cancelCanceled,
): [CancelCtx, CancelCauseFunc] {
  // The common case first, the second rung of attach's ladder: a live parent of ours.
  if (parent instanceof CancelCtx && parent._error === null) adopt(fn, "parent", parent, c);
  else attach(fn, "parent", c, parent);
  return [c, disposable(c, cancel.bind(c))];
}

function cancelCanceled(this: CancelCtx): void {
  this._cancel(Canceled, Canceled);
}

function cancelWithCause(this: CancelCtx, why?: unknown): void {
  this._cancel(Canceled, why ?? Canceled);
}

/**
 * disposable makes f, which cancels c, a Disposable too, and tells the debug
 * hooks about c. f is bound: a bound function is the smallest function
 * object there is (and one whose prototype is not Function.prototype is
 * slow to make), so the dispose property costs one small array.
 */
function disposable<F extends (why?: unknown) => void>(c: CancelCtx, f: F): F & Disposable {
  const d = f as F & Disposable;
  d[DISPOSE] = f;
  if (hooks !== null) hooks.created(c, f);
  return d;
}

/**
 * withCancel returns a child of `parent` and a function that cancels it. The
 * child is done when the cancel function is called or when the parent is
 * done, whichever happens first.
 *
 * Call cancel as soon as the work is done: it releases the child's place in
 * the parent, which otherwise lives as long as the parent does.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancel(parent);
 * try {
 *   await Promise.any([fetch(a, { signal: ctx.signal }), fetch(b, { signal: ctx.signal })]);
 * } finally {
 *   cancel(); // stop the slower request
 * }
 * ```
 */
export function withCancel(parent: Context): [Context, CancelFunc] {
  const fn = "withCancel(parent)";
  checkContext(fn, "parent", parent);
  return cancelable(fn, new CancelCtx(parent, deadlineOf(fn, parent)), parent);
}

/**
 * withCancelCause is {@link withCancel} whose cancel function records why:
 * `cause(ctx)` returns the value given to the first call (`Canceled` if it
 * was `undefined` or `null`), while `ctx.err()` is `Canceled`.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancelCause(parent);
 * cancel(new Error("upstream closed"));
 * ctx.err();    // Canceled
 * cause(ctx);   // Error: upstream closed
 * ```
 */
export function withCancelCause(parent: Context): [Context, CancelCauseFunc] {
  const fn = "withCancelCause(parent)";
  checkContext(fn, "parent", parent);
  return cancelable(fn, new CancelCtx(parent, deadlineOf(fn, parent)), parent, cancelWithCause);
}

/**
 * cause returns why `ctx` is done: the first cause recorded on it or on the
 * ancestor whose cancellation reached it (see {@link withCancelCause},
 * `withDeadlineCause`, `withSignal`), else `ctx.err()`; `null` while the
 * context is live. A user's context that delegates `value()` to one of
 * taproot's is seen through.
 *
 * @example
 * ```ts
 * if (ctx.err() !== null) log.warn("stopped", { why: cause(ctx) });
 * ```
 */
export function cause(ctx: Context): unknown {
  checkContext("cause(ctx)", "ctx", ctx);
  const inner = ctx.value(cancelCtxKey);
  if (inner instanceof CancelCtx && inner._error !== null) return inner._cause;
  return ctx.err();
}
