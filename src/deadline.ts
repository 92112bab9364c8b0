import type { Context } from "./context.js";
import { Node } from "./context.js";
import type { CancelCtx, CancelFunc } from "./cancel.js";
import { KIND_CANCEL, KIND_DEADLINE, cancelFunc, newCancelCtx } from "./cancel.js";
import { DeadlineExceeded } from "./errors.js";
import { checkContext, checkNumber, toEpochMs } from "./validate.js";

/** setTimeout cannot wait longer than 2^31−1 ms (it fires at once instead), so far deadlines chain timers. */
export const MAX_TIMER_MS = 2_147_483_647;

type Timer = ReturnType<typeof setTimeout>;

/**
 * unref lets a deadline timer not keep Node's event loop alive, like
 * AbortSignal.timeout. Browsers return a number, which has no unref.
 */
function unref(t: Timer): Timer {
  if (typeof t === "object" && t !== null && typeof t.unref === "function") t.unref();
  return t;
}

/** arm starts (or, for a far deadline, re-starts) the timer of a deadline context. */
function arm(c: CancelCtx): void {
  const wait = (c._dl as number) - Date.now();
  c._x = unref(
    wait > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS, c) : setTimeout(expire, wait, c),
  );
}

function expire(c: CancelCtx): void {
  c._x = null;
  c._cancel(DeadlineExceeded, c._xc ?? DeadlineExceeded);
}

/** deadlineCtx is withDeadline after its arguments were checked by the function the user called. */
function deadlineCtx(parent: Context, ms: number, why: unknown): [Context, CancelFunc] {
  const cur = parent instanceof Node ? parent._dl : parent.deadline()?.getTime();
  // No deadline at all, or the parent's is already sooner: a plain cancelable child.
  if (ms === Infinity || (cur !== undefined && cur < ms)) {
    const c = newCancelCtx(parent, KIND_CANCEL);
    return [c, cancelFunc(c)];
  }
  const c = newCancelCtx(parent, KIND_DEADLINE);
  c._dl = ms;
  c._xc = why;
  const f = cancelFunc(c);
  if (c._err === null) {
    // A deadline already past makes a context born done.
    if (ms <= Date.now()) c._cancel(DeadlineExceeded, why ?? DeadlineExceeded);
    else arm(c);
  }
  return [c, f];
}

/**
 * withDeadline returns a child of `parent` that is done, with
 * `DeadlineExceeded`, at `d` (a Date or epoch milliseconds), when its cancel
 * function is called, or when the parent is done, whichever comes first. It
 * never extends the parent's deadline: if the parent's is sooner, the child
 * reports the parent's. `Infinity` means no deadline; a time already past
 * makes a context that is born done.
 *
 * Call cancel as soon as the work is done: it releases the timer and the
 * parent's reference. The timer never keeps Node's process alive by itself.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withDeadline(parent, job.mustFinishBy);
 * try {
 *   await run(ctx, job);
 * } finally {
 *   cancel();
 * }
 * ```
 */
export function withDeadline(parent: Context, d: Date | number): [Context, CancelFunc] {
  checkContext("withDeadline(parent, d)", parent);
  return deadlineCtx(parent, toEpochMs("withDeadline(parent, d)", d), undefined);
}

/**
 * withDeadlineCause is {@link withDeadline} that records `cause` when the
 * deadline passes: `ctx.err()` is `DeadlineExceeded`, `cause(ctx)` is
 * `cause`.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withDeadlineCause(parent, endOfSlot, new Error("render slot is over"));
 * ```
 */
export function withDeadlineCause(
  parent: Context,
  d: Date | number,
  cause: unknown,
): [Context, CancelFunc] {
  checkContext("withDeadlineCause(parent, d, cause)", parent);
  return deadlineCtx(parent, toEpochMs("withDeadlineCause(parent, d, cause)", d), cause);
}

/**
 * withTimeout returns `withDeadline(parent, Date.now() + ms)`: a child that
 * is done with `DeadlineExceeded` after `ms` milliseconds. `Infinity` means
 * no deadline; zero or less makes a context that is born done.
 *
 * Call cancel as soon as the work is done: it releases the timer and the
 * parent's reference.
 *
 * @example
 * ```ts
 * const [qctx, cancel] = withTimeout(ctx, 2_000);
 * try {
 *   return await db.query(qctx, sql);
 * } finally {
 *   cancel();
 * }
 * ```
 */
export function withTimeout(parent: Context, ms: number): [Context, CancelFunc] {
  checkContext("withTimeout(parent, ms)", parent);
  checkNumber("withTimeout(parent, ms)", ms, "ms");
  return deadlineCtx(parent, Date.now() + ms, undefined);
}

/**
 * withTimeoutCause is {@link withTimeout} that records `cause` when the time
 * is up: `ctx.err()` is `DeadlineExceeded`, `cause(ctx)` is `cause`.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withTimeoutCause(parent, 500, new Error("cache lookup took over 500ms"));
 * ```
 */
export function withTimeoutCause(
  parent: Context,
  ms: number,
  cause: unknown,
): [Context, CancelFunc] {
  checkContext("withTimeoutCause(parent, ms, cause)", parent);
  checkNumber("withTimeoutCause(parent, ms, cause)", ms, "ms");
  return deadlineCtx(parent, Date.now() + ms, cause);
}
