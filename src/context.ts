import type { Key } from "./key.js";
import { describeValue, timeOf } from "./validate.js";

/**
 * Context carries a cancellation signal, a deadline and request-scoped values
 * across API boundaries. It is the TypeScript counterpart of Go's
 * `context.Context`.
 *
 * Get one from {@link background} at the root of a program, or from the
 * caller, and derive children with `withCancel`, `withTimeout`,
 * `withDeadline`, `withValue` or `withSignal`. Pass it as the first argument,
 * named `ctx`, to every function on the call path.
 *
 * Implement it yourself only to adapt another cancellation mechanism; every
 * function of taproot accepts such a context as a parent. A class of your own
 * declares `value(key: unknown): any` (or the two overloads below). What
 * taproot does when such a context breaks the contract:
 * - `done()` returning anything but a Promise or `null`, or `deadline()`
 *   anything but a valid `Date` or `undefined`: deriving from it is a
 *   `TypeError` naming the function called (`withCancel(parent):
 *   parent.done() returned undefined; …`).
 * - `err()` throwing: the context counts as done; its children end with
 *   `Canceled`, and `cause(child)` is what `err()` threw.
 * - `done()` rejecting, or settling while `err()` is still `null`: its
 *   children end with `Canceled`, and `cause(child)` is the rejection reason
 *   (`Canceled` if it resolved). Nothing is left as an unhandled rejection.
 *
 * Never `Object.freeze` a cancelable context: it records its children and
 * its cancellation in itself. taproot refuses a frozen one with a
 * `TypeError` wherever it meets it (as a parent, `signal`, `done()`, its
 * cancel function). One frozen among the children of a canceled context,
 * the followers of a signal or the children of a user's context stays live,
 * but never stops the others from ending. Value contexts, `background()`
 * and `withoutCancel()` hold nothing that changes, and work frozen.
 *
 * @example
 * ```ts
 * async function handle(ctx: Context, job: Job): Promise<void> {
 *   if (ctx.err() !== null) return; // already canceled: do nothing
 *   await fetch(job.url, { signal: ctx.signal }); // aborts when ctx is done
 * }
 * ```
 */
export interface Context {
  /** deadline returns the time when work done for this context should stop, or `undefined` if there is none. */
  deadline(): Date | undefined;
  /**
   * done returns a Promise that resolves (never rejects) once the context is
   * done, the same Promise on every call, or `null` if the context can never
   * be canceled (background, withoutCancel and values over those).
   */
  done(): Promise<void> | null;
  /**
   * err returns `null` while the context is live; once it is done, `Canceled`,
   * `DeadlineExceeded` or the error of a user's own parent, and never changes
   * after that.
   */
  err(): Error | null;
  /** value returns the value stored for `key` by this context or the nearest ancestor that set it, else `undefined`. */
  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  /**
   * signal is an `AbortSignal` that aborts when the context is done, with
   * `reason === ctx.err()`. Pass it to any API that takes a `signal`.
   */
  readonly signal: AbortSignal;
  /** toString describes the context and its ancestors in Go's format, e.g. `context.Background.WithCancel`. */
  toString(): string;
}

/**
 * cancelCtxKey is the key under which a cancelable context answers `value()`
 * with itself, as Go's `&cancelCtxKey` does: cause() and propagation use it
 * to see through a user's wrapper to the taproot context inside. No other
 * context answers it but withoutCancel, which hides the ones above it.
 */
export const cancelCtxKey: object = Object.freeze({});

let never: AbortSignal | null = null;

/**
 * neverSignal returns the one signal shared by every context that can never
 * be canceled. It never aborts, so a listener added to it never fires.
 * (`taproot-context/node` lifts Node's ten-listener warning on it: ten in-flight
 * fetches over background() are not a leak.)
 */
export function neverSignal(): AbortSignal {
  return (never ??= new AbortController().signal);
}

/**
 * BaseCtx is what every context taproot creates shares: a parent, an
 * effective deadline, and the Go-format printing. Each kind is a class of
 * its own, as in Go's src/context: BackgroundCtx, ValueCtx, WithoutCancelCtx,
 * and the cancelable CancelCtx with its variants TimerCtx and SignalCtx.
 */
export abstract class BaseCtx implements Context {
  // Each kind assigns these in its own constructor, in the order that puts
  // its hottest fields first in memory.
  /** The context this one was derived from; null for background. Set at creation, never changed. */
  declare _parent: Context | null;
  /** The effective deadline in epoch ms, the parent's or a sooner one of its own; undefined for none. Set at creation, never changed. */
  declare _deadline: number | undefined;

  deadline(): Date | undefined {
    return this._deadline === undefined ? undefined : new Date(this._deadline);
  }

  abstract done(): Promise<void> | null;
  abstract err(): Error | null;
  abstract get signal(): AbortSignal;
  abstract value<T>(key: Key<T>): T | undefined;
  abstract value(key: unknown): unknown;
  /** _label returns this context's own part of toString(), e.g. ".WithCancel". */
  abstract _label(): string;
  /**
   * _cancelSource returns the nearest context whose cancellation ends this
   * one: itself if it is cancelable, else the nearest cancelable ancestor
   * (one of ours or a user's), or null if nothing above can cancel.
   */
  abstract _cancelSource(): Context | null;
  /**
   * _valueSource returns where a child's value() goes on from here: itself
   * if it holds a value, else the nearest ancestor that may (a value context
   * or a user's context), or null if none does.
   */
  abstract _valueSource(): Context | null;

  toString(): string {
    let text = "";
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the walk up the tree starts here
    let c: Context | null = this;
    while (c instanceof BaseCtx) {
      text = c._label() + text;
      c = c._parent;
    }
    return (c === null ? "" : String(c)) + text;
  }

  /** Node's util.inspect and console.log show the Go-format string. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/**
 * NeverCanceledCtx is what the two kinds that can never be canceled share,
 * background and withoutCancel: done() is null, err() is null, the signal is
 * the one that never aborts, and nothing above can cancel them.
 */
export abstract class NeverCanceledCtx extends BaseCtx {
  done(): null {
    return null;
  }

  err(): null {
    return null;
  }

  get signal(): AbortSignal {
    return neverSignal();
  }

  _cancelSource(): null {
    return null;
  }
}

/** cancelSourceOf returns parent's nearest cancelable context (see BaseCtx._cancelSource); a user's context is its own. */
export function cancelSourceOf(parent: Context): Context | null {
  return parent instanceof BaseCtx ? parent._cancelSource() : parent;
}

/** valueSourceOf returns where a child of parent looks values up (see BaseCtx._valueSource); a user's context is its own. */
export function valueSourceOf(parent: Context): Context | null {
  return parent instanceof BaseCtx ? parent._valueSource() : parent;
}

/**
 * deadlineOf returns a parent's effective deadline in epoch ms, reading ours
 * directly. A user's context must return a valid Date or undefined: anything
 * else is a TypeError naming `fn`, the function the user called.
 */
export function deadlineOf(fn: string, parent: Context): number | undefined {
  return parent instanceof BaseCtx ? parent._deadline : userDeadline(fn, parent);
}

function userDeadline(fn: string, parent: Context): number | undefined {
  const d: unknown = parent.deadline();
  if (d === undefined) return undefined;
  const ms = timeOf(d);
  if (typeof ms !== "number" || ms !== ms) {
    throw new TypeError(
      `${fn}: parent.deadline() returned ${ms !== ms ? "an invalid Date" : describeValue(d)}; a Context's deadline() must return a valid Date, or undefined when there is none`,
    );
  }
  return ms;
}
