import type { Context } from "./context.js";
import {
  BaseCtx,
  cancelCtxKey,
  cancelSourceOf,
  deadlineOf,
  neverSignal,
  valueSourceOf,
} from "./context.js";
import { CancelCtx } from "./cancel-ctx.js";
import { formatValue } from "./format.js";
import type { Key } from "./key.js";
import { WithoutCancelCtx } from "./without-cancel.js";
import { checkContext, describeValue } from "./validate.js";

/**
 * ValueCtx is Go's valueCtx: one key/value pair, and nothing else changed.
 * done, err and signal are those of the nearest cancelable ancestor
 * (`_source`), read directly rather than through every parent.
 *
 * value() walks from value context to value context, skipping the contexts
 * in between that hold no values (cancelable ones, withoutCancel): a lookup
 * costs one step per withValue on the path, whatever else the path holds.
 * Each context also keeps the key and the link of the one above it, so the
 * walk checks two levels per context it reads, and the next address it
 * needs never waits on the level in between.
 */
export class ValueCtx extends BaseCtx {
  /** The key and its value; set at creation, never changed. */
  _key: unknown;
  _value: unknown;
  /** The nearest value context above, unless a user's context comes first (null then, and when there is none). Set at creation. */
  _above: ValueCtx | null;
  /** `_above._above`, so that value() can step two levels at a time. Set at creation. */
  _twoAbove: ValueCtx | null;
  /**
   * `_above._key`, so that a step reads one context, not two. Without
   * `_above` it is this context's own `_key`, which a lookup has already
   * compared by then. Set at creation.
   */
  _aboveKey: unknown;
  /** The user's context where the walk through `_above` ends, if any: it answers for itself and its ancestors. Set at creation. */
  _outside: Context | null;
  /** The nearest cancelable ancestor (one of ours or a user's), or null if none can cancel. Set at creation. */
  _source: Context | null;

  constructor(parent: Context, deadline: number | undefined, key: unknown, value: unknown) {
    super();
    this._parent = parent;
    this._deadline = deadline;
    this._key = key;
    this._value = value;
    const above = parent instanceof CancelCtx ? parent._values : valueSourceOf(parent);
    if (above instanceof ValueCtx) {
      this._above = above;
      this._twoAbove = above._above;
      this._aboveKey = above._key;
      this._outside = above._outside;
    } else {
      this._above = this._twoAbove = null;
      this._aboveKey = key;
      this._outside = above;
    }
    this._source = cancelSourceOf(parent);
  }

  done(): Promise<void> | null {
    const s = this._source;
    return s === null ? null : s.done();
  }

  err(): Error | null {
    const s = this._source;
    return s === null ? null : s.err();
  }

  get signal(): AbortSignal {
    const s = this._source;
    return s === null ? neverSignal() : s.signal;
  }

  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  value(key: unknown): unknown {
    // NaN and -0 need Object.is; cancelCtxKey asks for the nearest cancelable context (Go's cancelCtxKey).
    if (key !== key || key === 0 || key === cancelCtxKey) return valueSlow(this, key);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the walk up the tree starts here
    let c: ValueCtx = this;
    for (;;) {
      if (c._key === key) return c._value;
      if (c._aboveKey === key) return (c._above as ValueCtx)._value;
      const next = c._twoAbove;
      if (next === null) break;
      c = next;
    }
    const outside = this._outside;
    return outside === null ? undefined : outside.value(key);
  }

  _label(): string {
    return `.WithValue(${formatValue(this._key)}, ${formatValue(this._value)})`;
  }

  _cancelSource(): Context | null {
    return this._source;
  }

  _valueSource(): Context {
    return this;
  }
}

/** valueSlow walks every parent, for the keys that === cannot compare and for cancelCtxKey. */
function valueSlow(start: ValueCtx, key: unknown): unknown {
  let c: Context | null = start;
  while (c instanceof BaseCtx) {
    if (c instanceof CancelCtx) {
      if (key === cancelCtxKey) return c;
    } else if (c instanceof ValueCtx) {
      if (Object.is(c._key, key)) return c._value;
    } else if (c instanceof WithoutCancelCtx) {
      // It hides the cancelable contexts above it, as in Go.
      if (key === cancelCtxKey) return undefined;
    }
    c = c._parent;
  }
  return c === null ? undefined : c.value(key);
}

/**
 * withValue returns a child of `parent` that answers `value(key)` with `val`
 * and passes every other lookup to `parent`. Cancellation and deadline are
 * the parent's.
 *
 * Use values only for request-scoped data that crosses API boundaries (a
 * request id, the authenticated user), not to pass optional parameters. Make
 * keys with {@link createKey} so packages cannot collide and lookups are
 * typed.
 *
 * @example
 * ```ts
 * const requestIdKey = createKey<string>("requestId");
 * const ctx = withValue(parent, requestIdKey, "r-42");
 * ctx.value(requestIdKey); // "r-42", typed string | undefined
 * ```
 */
export function withValue<K>(
  parent: Context,
  key: K,
  val: K extends Key<infer T> ? T : unknown,
): Context {
  checkContext("withValue(parent, key, val)", "parent", parent);
  if (key === null || key === undefined) {
    throw new TypeError(
      `withValue(parent, key, val): key is ${describeValue(key)}; make a key with createKey<T>("name")`,
    );
  }
  return new ValueCtx(parent, deadlineOf("withValue(parent, key, val)", parent), key, val);
}
