import type { Context } from "./context.js";
import { cancelCtxKey } from "./context.js";
import { ValueCtx } from "./value.js";

// Holding cancelCtxKey (which no user holds) says, as withoutCancel does, that nothing above can cancel.
const root: Context = Object.freeze(new ValueCtx(null, cancelCtxKey, undefined));

/**
 * background returns the root of every context tree: never canceled, no
 * deadline, no values. Call it at the entry point of a program (main, a test,
 * a process-lifetime worker) and derive everything else from it. It returns
 * one frozen singleton and allocates nothing.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancel(background());
 * ```
 */
export function background(): Context {
  return root;
}

/**
 * todo returns the same context as {@link background}: use it where a
 * context should come from the caller but that wiring is not written yet.
 * The difference exists only in the source, where the `taproot/no-todo`
 * lint rule lists every placeholder left to wire up.
 *
 * @example
 * ```ts
 * await loadUser(todo(), id); // TODO: take ctx from the handler
 * ```
 */
export function todo(): Context {
  return root;
}
