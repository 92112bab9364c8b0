import type { Context } from "./context.js";
import { NeverCanceledCtx } from "./context.js";

/**
 * BackgroundCtx is the root of every tree, Go's backgroundCtx: never
 * canceled, no deadline, no values. There is one, frozen; todo() returns it
 * too. It has no fields of its own.
 */
export class BackgroundCtx extends NeverCanceledCtx {
  constructor() {
    super();
    this._parent = null;
    this._deadline = undefined;
  }

  value(): undefined {
    return undefined;
  }

  _label(): string {
    return "context.Background";
  }

  _valueSource(): null {
    return null;
  }
}

const root: Context = Object.freeze(new BackgroundCtx());

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
