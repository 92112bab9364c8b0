import type { Context } from "./context.js";
import type { Listener, Owner, ChildNode } from "./cancel.js";
import { attach, unlink } from "./cancel.js";
import { describeValue } from "./validate.js";
import { checkContext } from "./validate.js";
import { binder } from "./async-binder.js";

/** AfterFunc waits in its context's list of children until the context is done or stop() is called. */
class AfterFunc implements Listener {
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  /** The function, until the context is done (it is started then) or stop() wins; null after either. */
  _f: (() => void) | null;
  constructor(f: () => void) {
    this._f = f;
  }

  _fire(): void {
    const f = this._f;
    if (f === null) return;
    this._f = null;
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
  checkContext("afterFunc(ctx, f)", "ctx", ctx);
  if (typeof f !== "function") {
    throw new TypeError(
      `afterFunc(ctx, f): f must be the function to run once ctx is done, got ${describeValue(f)}`,
    );
  }
  // f runs in the async context of this call when a binder is installed (async-binder.ts).
  const a = new AfterFunc(binder === null ? f : binder(f));
  attach(a, ctx);
  return () => {
    if (a._f === null) return false;
    a._f = null;
    const o = a._owner;
    if (o !== null) unlink(o, a);
    return true;
  };
}
