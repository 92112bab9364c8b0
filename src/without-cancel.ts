import type { Context } from "./context.js";
import { NeverCanceledCtx, cancelCtxKey, valueSourceOf } from "./context.js";
import type { Key } from "./key.js";
import { checkContext } from "./validate.js";

/**
 * WithoutCancelCtx is Go's withoutCancelCtx: the parent's values, and
 * nothing of its cancellation or deadline. Children look values up past it,
 * straight from the parent's values (it holds none itself).
 */
export class WithoutCancelCtx extends NeverCanceledCtx {
  /** Where value() goes on: the parent's value source (see BaseCtx._valueSource). Set at creation, never changed. */
  _values: Context | null;

  constructor(parent: Context) {
    super();
    this._parent = parent;
    this._deadline = undefined;
    this._values = valueSourceOf(parent);
  }

  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  value(key: unknown): unknown {
    // Answering cancelCtxKey with undefined hides the ancestors' cancelable
    // contexts from cause() and from children's propagation, as in Go.
    if (key === cancelCtxKey) return undefined;
    const v = this._values;
    return v === null ? undefined : v.value(key);
  }

  _label(): string {
    return ".WithoutCancel";
  }

  _valueSource(): Context | null {
    return this._values;
  }
}

/**
 * withoutCancel returns a context that keeps `parent`'s values but is never
 * canceled and has no deadline: its `done()` is `null`, `err()` stays `null`.
 * Use it for work that must finish even after the request that started it
 * ends, such as writing an audit record.
 *
 * @example
 * ```ts
 * void audit(withoutCancel(ctx), event); // outlives the request, keeps its values
 * ```
 */
export function withoutCancel(parent: Context): Context {
  checkContext("withoutCancel(parent)", "parent", parent);
  return new WithoutCancelCtx(parent);
}
