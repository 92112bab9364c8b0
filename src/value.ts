import type { Context } from "./context.js";
import { Node, cancelCtxKey, neverSignal } from "./context.js";
import { formatValue } from "./format.js";
import type { Key } from "./key.js";
import { describe } from "./key.js";
import { checkContext } from "./validate.js";

/**
 * ValueCtx adds one key/value pair and changes nothing else: done, err and
 * signal are those of the nearest cancelable ancestor (_src), read directly
 * rather than through every parent. background() and withoutCancel() are
 * ValueCtx too, with no cancelable ancestor, so that value() meets only two
 * kinds of object on its walk.
 */
export class ValueCtx extends Node {
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

  _label(): string {
    if (this._parent === null) return "context.Background";
    if (this._key === cancelCtxKey) return ".WithoutCancel";
    return `.WithValue(${formatValue(this._key)}, ${formatValue(this._val)})`;
  }
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
  checkContext("withValue(parent, key, val)", parent);
  if (key === null || key === undefined) {
    throw new TypeError(
      `withValue(parent, key, val): key is ${describe(key)}; make a key with createKey<T>("name")`,
    );
  }
  const c = new ValueCtx(parent, key, val);
  if (parent instanceof Node) {
    c._src = parent._src;
    c._dl = parent._dl;
  } else {
    c._src = parent;
    c._dl = parent.deadline()?.getTime();
  }
  return c;
}
