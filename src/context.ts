import type { Key } from "./key.js";

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
 * declares `value(key: unknown): any` (or the two overloads below).
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

/** The key under which a cancelable node answers `value()` with itself, as in Go: it lets cause() and propagation see through a user's wrapper. */
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
 * Node is the base of every context taproot creates: a parent, an effective
 * deadline, and the Go-format printing. The two kinds, ValueCtx and
 * CancelCtx, add the rest.
 */
export abstract class Node implements Context {
  // Each kind assigns these in its own constructor, in the order that puts
  // its hottest fields first in memory.
  /** The parent, or null for background. */
  declare _parent: Context | null;
  /** The effective deadline in epoch ms, inherited or own; undefined for none. Set at creation. */
  declare _dl: number | undefined;

  deadline(): Date | undefined {
    return this._dl === undefined ? undefined : new Date(this._dl);
  }

  abstract done(): Promise<void> | null;
  abstract err(): Error | null;
  abstract get signal(): AbortSignal;
  abstract value<T>(key: Key<T>): T | undefined;
  abstract value(key: unknown): unknown;
  /** _label returns this node's own part of toString(), e.g. ".WithCancel". */
  abstract _label(): string;

  toString(): string {
    let s = "";
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the walk up the tree starts here
    let c: Context | null = this;
    while (c instanceof Node) {
      s = c._label() + s;
      c = c._parent;
    }
    return (c === null ? "" : String(c)) + s;
  }

  /** Node's util.inspect and console.log show the Go-format string. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** deadlineOf returns a parent's effective deadline in epoch ms, reading ours directly. */
export function deadlineOf(parent: Context): number | undefined {
  return parent instanceof Node ? parent._dl : parent.deadline()?.getTime();
}
