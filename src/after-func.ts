import type { Context } from "./context.js";
import type { ChildNode, Listener, Owner } from "./child-list.js";
import { unlink } from "./child-list.js";
import { attach } from "./propagate.js";
import { checkContext, describeValue } from "./validate.js";
import { binder } from "./async-binder.js";

/** AfterFunc waits in its context's list of children until the context is done or stop() is called. */
class AfterFunc implements Listener {
  /** Neighbours and list in the context's children; set by attach, cleared by stop() or when the context is done. */
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  /** The function, until the context is done (it is started then) or stop() wins; null after either. */
  _callback: (() => void) | null;

  constructor(callback: () => void) {
    this._callback = callback;
  }

  _fire(): void {
    const f = this._callback;
    if (f === null) return;
    this._callback = null;
    // Never inside the cancel() that got us here: f runs once that call has returned.
    queueMicrotask(f);
  }
}

/**
 * afterFunc arranges to call `f` once, asynchronously, after `ctx` is done,
 * and returns `stop`. `stop()` returns `true` if it prevented `f` from
 * running, `false` if `f` already started, was already committed to run, or
 * `stop` was already called; its answer always matches whether `f` runs. On a
 * context that can never be canceled, the first `stop()` returns `true`.
 *
 * `f` runs as a microtask: an exception it throws is reported like any
 * uncaught exception.
 *
 * @example
 * ```ts
 * const stop = afterFunc(ctx, () => socket.destroy());
 * await exchange(socket);
 * stop(); // the exchange finished first: keep the socket open
 * ```
 */
export function afterFunc(ctx: Context, f: () => void): () => boolean {
  const fn = "afterFunc(ctx, f)";
  checkContext(fn, "ctx", ctx);
  if (typeof f !== "function") {
    throw new TypeError(
      `${fn}: f must be the function to run once ctx is done, got ${describeValue(f)}`,
    );
  }
  // f runs in the async context of this call when a binder is installed (async-binder.ts).
  const a = new AfterFunc(binder?.(f) ?? f);
  attach(fn, "ctx", a, ctx);
  return () => {
    if (a._callback === null) return false;
    a._callback = null;
    const owner = a._owner;
    if (owner !== null) unlink(owner, a);
    return true;
  };
}
