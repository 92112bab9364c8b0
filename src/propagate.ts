import type { Context } from "./context.js";
import { cancelCtxKey, cancelSourceOf } from "./context.js";
import type { ChildNode, Owner } from "./child-list.js";
import { link } from "./child-list.js";
import { CancelCtx, fire, fireAll, frozen } from "./cancel-ctx.js";
import { hooks } from "./debug-hooks.js";
import { Canceled } from "./errors.js";
import { describeValue } from "./validate.js";

/**
 * Bridge follows a user's own context: one subscription to its done()
 * promise per user context, however many children come and go. A child
 * unlinks itself from the bridge when it ends, so nothing accumulates.
 */
class Bridge implements Owner {
  /** The live children following the user's context; emptied when it is done. */
  _head: ChildNode | null = null;
  _count = 0;
  /** The user's context; set at creation. */
  readonly _context: Context;

  constructor(context: Context) {
    this._context = context;
  }

  /** The user's done() settled: fulfilled (`rejected` false) or rejected with `reason`. */
  _fire(rejected: boolean, reason: unknown): void {
    bridges.delete(this._context);
    const [error, why] = userState(this._context) ?? [Canceled, rejected ? reason : Canceled];
    fireAll(this, error, why);
  }
}

const bridges = new WeakMap<Context, Bridge>();

/**
 * userState returns the error and cause of a user's context that is done,
 * or null while its err() says it is live. A user's context must say why
 * through err(); when it cannot, the child still ends, and its cause says
 * what went wrong:
 * - err() throws: Canceled, with the thrown value as cause (here, and
 *   when done() settles);
 * - done() settles while err() is still null: Canceled, with the rejection
 *   reason as cause if done() rejected, else Canceled (see Bridge).
 */
function userState(parent: Context): [Error, unknown] | null {
  let error: Error | null;
  try {
    error = parent.err();
  } catch (thrown) {
    return [Canceled, thrown];
  }
  if (error === null) return null;
  let why: unknown;
  try {
    why = causeOf(parent, error);
  } catch (thrown) {
    why = thrown;
  }
  return [error, why];
}

/** causeOf returns the cause recorded by the taproot context that a done user's context wraps, else its error. */
function causeOf(ctx: Context, error: Error): unknown {
  const inner = ctx.value(cancelCtxKey);
  return inner instanceof CancelCtx && inner._error !== null ? inner._cause : error;
}

/**
 * attach makes `child` follow `parent`'s cancellation; `fn` and `param` name
 * the function the user called and its parameter, for the errors. The
 * ladder of cases, as in Go's propagateCancel:
 */
export function attach(fn: string, param: string, child: ChildNode, parent: Context): void {
  const p = cancelSourceOf(parent);
  // Parent can never be canceled: nothing to do.
  if (p === null) return;
  if (p instanceof CancelCtx) {
    // Parent is one of ours and already done: the child is born done.
    if (p._error !== null) fire(child, p._error, p._cause);
    // Parent is one of ours and live: register as its child.
    else adopt(fn, param, p, child);
    return;
  }
  // Any other Context that is already done: born done, adopting its err and cause.
  const state = userState(p);
  if (state !== null) {
    fire(child, state[0], state[1]);
    return;
  }
  const d: unknown = p.done();
  // Parent says it can never be canceled.
  if (d === null) return;
  if (typeof (d as Promise<void> | undefined)?.then !== "function") {
    throw new TypeError(
      `${fn}: ${param}.done() returned ${describeValue(d)}; a Context's done() must return a Promise that resolves once it is done, or null if it can never be canceled`,
    );
  }
  // A user's wrapper around one of ours, done() included: register with ours (Go's parentCancelCtx).
  const inner = p.value(cancelCtxKey);
  if (inner instanceof CancelCtx && inner.done() === d) {
    if (inner._error !== null) fire(child, inner._error, inner._cause);
    else adopt(fn, param, inner, child);
    return;
  }
  // Any other Context: follow its done(), and let go when the child ends.
  let bridge = bridges.get(p);
  if (bridge === undefined) {
    const b = new Bridge(p);
    // Cached only once its done() took the subscription: a then() that
    // throws must not leave a bridge that nothing will ever fire.
    (d as Promise<void>).then(
      () => b._fire(false, undefined),
      (reason: unknown) => b._fire(true, reason),
    );
    bridges.set(p, b);
    bridge = b;
  }
  adopt(fn, param, bridge, child);
}

/** adopt links child into owner's list, refusing a frozen owner, and tells the debug hooks when the list grows long. */
export function adopt(fn: string, param: string, owner: Owner, child: ChildNode): void {
  let count: number;
  try {
    count = link(owner, child);
  } catch (e) {
    throw frozen(`${fn}: ${param} is frozen`, e);
  }
  if (hooks !== null && count > hooks.childLimit) {
    hooks.tooManyChildren(owner instanceof Bridge ? owner._context : (owner as CancelCtx), count);
  }
}
