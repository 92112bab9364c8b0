import type { Context } from "./context.js";
import { deadlineOf } from "./context.js";
import type { CancelFunc } from "./cancel.js";
import { cancelable } from "./cancel.js";
import { CancelCtx } from "./cancel-ctx.js";
import { DeadlineExceeded } from "./errors.js";
import { formatDuration } from "./format.js";
import { checkContext, checkNumber, toEpochMs } from "./validate.js";

/** setTimeout cannot wait longer than 2^31−1 ms (it fires at once instead), so far deadlines chain timers. */
export const MAX_TIMER_MS = 2_147_483_647;

type Timer = ReturnType<typeof setTimeout>;

/** Deno's global, where it exists: its web timers are numbers, unref'd by id. */
const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;

/**
 * unref lets a deadline timer not keep the event loop alive, like
 * AbortSignal.timeout: Node's and Bun's timers have unref(); Deno 2.0's web
 * timers are numbers, which Deno.unrefTimer takes; browsers' numbers need
 * nothing.
 */
function unref(t: Timer): Timer {
  if (typeof t === "number") deno?.unrefTimer?.(t);
  else (t as { unref?: () => void }).unref?.();
  return t;
}

/**
 * TimerCtx is Go's timerCtx: a CancelCtx with a deadline of its own and the
 * timer that ends it. It only arms and releases the timer; canceling is the
 * engine's (CancelCtx).
 */
export class TimerCtx extends CancelCtx {
  /** The pending timer; set by arm, cleared when it fires or by the first cancel. */
  _timer: Timer | null;

  constructor(parent: Context, deadline: number) {
    super(parent, deadline);
    this._timer = null;
  }

  override _label(): string {
    const deadline = this._deadline as number;
    return `.WithDeadline(${new Date(deadline).toISOString()} [${formatDuration(deadline - Date.now())}])`;
  }

  override _release(): void {
    const timer = this._timer;
    if (timer !== null) {
      clearTimeout(timer);
      this._timer = null;
    }
  }
}

/**
 * arm starts (or, for a far deadline, re-starts) the timer of a deadline
 * context; a deadline already past ends it now, so a context made with one
 * is born done.
 */
function arm(c: TimerCtx, why: unknown): void {
  const wait = (c._deadline as number) - Date.now();
  if (wait <= 0) expire(c, why);
  else {
    c._timer = unref(
      wait > MAX_TIMER_MS
        ? setTimeout(arm, MAX_TIMER_MS, c, why)
        : setTimeout(expire, wait, c, why),
    );
  }
}

function expire(c: TimerCtx, why: unknown): void {
  c._timer = null;
  c._cancel(DeadlineExceeded, why ?? DeadlineExceeded);
}

/**
 * deadlineCtx is what the four functions share: `fn` names the one the user
 * called, and `at` is its deadline (a Date or epoch ms) or, with `timeout`,
 * its timeout in ms. withTimeout is withDeadline at now + ms.
 */
function deadlineCtx(
  fn: string,
  parent: Context,
  at: Date | number,
  why: unknown,
  timeout: boolean,
): [Context, CancelFunc] {
  checkContext(fn, "parent", parent);
  let ms: number;
  if (timeout) {
    checkNumber(fn, at, "ms");
    ms = Date.now() + (at as number);
  } else ms = toEpochMs(fn, at);
  const current = deadlineOf(fn, parent);
  // No deadline at all, or the parent's is already sooner: a plain cancelable child, as in Go.
  if (ms === Infinity || (current !== undefined && current < ms))
    return cancelable(fn, new CancelCtx(parent, current), parent);
  // Dates end at ±8.64e15 ms: a deadline beyond is kept at the last (or first) date, so that
  // deadline() is always a valid Date. Nothing waits that long (the last date is 273,790 years
  // away), and a deadline before the first is as past as any.
  const c = new TimerCtx(parent, Math.max(-8.64e15, Math.min(ms, 8.64e15)));
  const r = cancelable(fn, c, parent);
  if (c._error === null) arm(c, why);
  return r;
}

/**
 * withDeadline returns a child of `parent` that is done, with
 * `DeadlineExceeded`, at `d` (a Date or epoch milliseconds), when its cancel
 * function is called, or when the parent is done, whichever comes first. It
 * never extends the parent's deadline: if the parent's is sooner, the child
 * reports the parent's. `Infinity` means no deadline; a time already past
 * makes a context that is born done. `d` may be a Date from another realm
 * (an iframe, a `vm` context). A deadline beyond the range of Date
 * (±8.64e15 ms) is kept at its last (or first) date, so `deadline()` is
 * always a valid Date.
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
  return deadlineCtx("withDeadline(parent, d)", parent, d, undefined, false);
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
  return deadlineCtx("withDeadlineCause(parent, d, cause)", parent, d, cause, false);
}

/**
 * withTimeout returns `withDeadline(parent, Date.now() + ms)`: a child that
 * is done with `DeadlineExceeded` after `ms` milliseconds. `Infinity` means
 * no deadline; zero or less (`-Infinity` too) makes a context that is born
 * done.
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
  return deadlineCtx("withTimeout(parent, ms)", parent, ms, undefined, true);
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
  return deadlineCtx("withTimeoutCause(parent, ms, cause)", parent, ms, cause, true);
}
