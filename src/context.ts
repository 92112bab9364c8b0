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
export const cancelCtxKey: object = Object.freeze({ name: "taproot.cancelCtxKey" });

/** A key no user can hold: nodes that store no value carry it. */
export const noKey: object = Object.freeze({ name: "taproot.noKey" });

let never: AbortSignal | null = null;

/**
 * neverSignal returns the one signal shared by every context that can never
 * be canceled. It never aborts, so a listener added to it never fires.
 * (`taproot/node` lifts Node's ten-listener warning on it: ten in-flight
 * fetches over background() are not a leak.)
 */
export function neverSignal(): AbortSignal {
  return (never ??= new AbortController().signal);
}

/**
 * Node is the base of every context taproot creates. The five fields are
 * shared by all kinds so that `value()` walks the chain with one loop.
 */
export abstract class Node implements Context {
  /** The parent, or null for background. */
  _parent: Context | null;
  /** The key this node answers in value(): a user key, cancelCtxKey, or noKey. */
  _key: unknown;
  _val: unknown;
  /**
   * The nearest context, this one or an ancestor, whose cancellation reaches
   * this one: a cancelable node of ours or a user's context; null if this
   * context can never be canceled. Set at creation, never changed.
   */
  _src: Context | null;
  /** The effective deadline in epoch ms, inherited or own; undefined for none. Set at creation. */
  _dl: number | undefined;
  /** Whether _parent is one of ours too, so value() can walk on with field reads alone. */
  _pn: boolean;

  constructor(parent: Context | null, key: unknown, val: unknown) {
    this._parent = parent;
    this._key = key;
    this._val = val;
    this._src = null;
    this._dl = undefined;
    this._pn = parent instanceof Node;
  }

  deadline(): Date | undefined {
    return this._dl === undefined ? undefined : new Date(this._dl);
  }

  abstract done(): Promise<void> | null;
  abstract err(): Error | null;
  abstract get signal(): AbortSignal;
  /** _label returns this node's own part of toString(), e.g. ".WithCancel". */
  abstract _label(): string;

  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  value(key: unknown): unknown {
    // NaN and -0 need Object.is; every other key compares with ===.
    if (key !== key || key === 0) return valueSlow(this, key);
    let c: Node = this;
    for (;;) {
      if (c._key === key) return c._val;
      if (!c._pn) break;
      c = c._parent as Node;
    }
    // The root (null), or a user's own context that answers for itself and its ancestors.
    const p = c._parent;
    return p === null ? undefined : p.value(key);
  }

  toString(): string {
    const parts: string[] = [];
    let c: Context | null = this;
    while (c instanceof Node) {
      parts.push(c._label());
      c = c._parent;
    }
    let s = c === null ? "" : String(c);
    for (let i = parts.length - 1; i >= 0; i--) s += parts[i];
    return s;
  }

  /** Node's util.inspect and console.log show the Go-format string. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

function valueSlow(start: Node, key: unknown): unknown {
  let c: Context = start;
  while (c instanceof Node) {
    if (Object.is(c._key, key)) return c._val;
    const p: Context | null = c._parent;
    if (p === null) return undefined;
    c = p;
  }
  return c.value(key);
}
