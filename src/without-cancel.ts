import type { Context } from "./context.js";
import { cancelCtxKey } from "./context.js";
import { ValueCtx } from "./value.js";
import { checkContext } from "./validate.js";

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
  // Answering cancelCtxKey with undefined hides the ancestors' cancelable
  // nodes from cause() and from children's propagation, as in Go.
  const c = new ValueCtx(parent, cancelCtxKey, undefined);
  c._src = null;
  c._dl = undefined;
  return c;
}
