import type { Context } from "./context.js";
import { Node, cancelCtxKey, deadlineOf, neverSignal } from "./context.js";
import { CancelCtx, srcOf } from "./cancel.js";
import { formatValue } from "./format.js";
import type { Key } from "./key.js";
import { describeValue } from "./validate.js";
import { checkContext } from "./validate.js";

/**
 * ValueCtx adds one key/value pair and changes nothing else: done, err and
 * signal are those of the nearest cancelable ancestor (_src), read directly
 * rather than through every parent. background() and withoutCancel() are
 * ValueCtx too.
 *
 * value() walks from value context to value context, skipping the
 * cancelable contexts in between (they hold no values): a lookup costs one
 * step per withValue on the path, whatever else the path holds. Each node
 * also keeps the key and the link of the one above it, so the walk checks
 * two levels per node it reads, and the next address it needs never waits
 * on the level in between.
 */
export class ValueCtx extends Node {
  _key: unknown;
  _val: unknown;
  /** The nearest ancestor ValueCtx, unless a user's context comes first; null then, and at the root. */
  _up: ValueCtx | null;
  /**
   * `_up._up`, kept so that value() can step two levels at a time: the next
   * step's address no longer waits for the level in between to be read.
   */
  _up2: ValueCtx | null;
  /**
   * `_up._key`, for the same reason: a step reads one node, not two. Without
   * _up it is cancelCtxKey, which value() never looks for in this walk.
   */
  _key2: unknown;
  /** The user's context where the walk through _up ends, if any: it answers for itself and its ancestors. */
  _ext: Context | null;
  /** The nearest cancelable ancestor: one of ours or a user's context; null if none can cancel. */
  _src: Context | null;

  constructor(parent: Context | null, key: unknown, val: unknown) {
    super();
    this._parent = parent;
    this._dl = parent === null ? undefined : deadlineOf(parent);
    this._key = key;
    this._val = val;
    const v = parent instanceof CancelCtx ? parent._vals : parent;
    if (v instanceof ValueCtx) {
      this._up = v;
      this._up2 = v._up;
      this._key2 = v._key;
      this._ext = v._ext;
    } else {
      this._up = this._up2 = null;
      this._key2 = cancelCtxKey;
      this._ext = v;
    }
    this._src = parent === null ? null : srcOf(parent);
  }

  done(): Promise<void> | null {
    const s = this._src;
    return s === null ? null : s.done();
  }

  err(): Error | null {
    const s = this._src;
    return s === null ? null : s.err();
  }

  get signal(): AbortSignal {
    const s = this._src;
    return s === null ? neverSignal() : s.signal;
  }

  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  value(key: unknown): unknown {
    // NaN and -0 need Object.is; cancelCtxKey asks for the nearest cancelable node (Go's cancelCtxKey).
    if (key !== key || key === 0 || key === cancelCtxKey) return valueSlow(this, key);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the walk up the tree starts here
    let c: ValueCtx = this;
    for (;;) {
      if (c._key === key) return c._val;
      if (c._key2 === key) return (c._up as ValueCtx)._val;
      const u2 = c._up2;
      if (u2 === null) break;
      c = u2;
    }
    const e = this._ext;
    return e === null ? undefined : e.value(key);
  }

  _label(): string {
    if (this._parent === null) return "context.Background";
    if (this._key === cancelCtxKey) return ".WithoutCancel";
    return `.WithValue(${formatValue(this._key)}, ${formatValue(this._val)})`;
  }
}

/** valueSlow walks every parent, for the keys that === cannot compare and for cancelCtxKey. */
function valueSlow(start: ValueCtx, key: unknown): unknown {
  let c: Context | null = start;
  while (c instanceof Node) {
    if (c instanceof CancelCtx) {
      if (key === cancelCtxKey) return c;
    } else {
      const v = c as ValueCtx;
      // withoutCancel holds cancelCtxKey: it hides the cancelable nodes above it, as in Go.
      if (Object.is(v._key, key)) return v._val;
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
  return new ValueCtx(parent, key, val);
}
