/**
 * Contexts that end themselves (a request's, a gRPC call's) need no cancel
 * function, and make none while no debug hooks are installed. Under the hooks
 * (taproot-context/testing), cancelable() makes one and hands it to them, and
 * the lost-cancel guard reports a context whose cancel function was collected
 * while it was live. Nobody holds such a context's cancel function, so this
 * module holds it, from the context's creation to its end.
 */
import { cancelable } from "./cancel.js";
import type { CancelCtx } from "./cancel-ctx.js";
import type { Context } from "./context.js";

/** The cancel function of each live self-ending context made under the hooks; an entry leaves at the context's end. */
const heldCancels = new Map<CancelCtx, () => void>();

/** linkHoldingCancel links `ctx` under `parent` as cancelable() does, and holds its cancel function until releaseHeldCancel(ctx). */
export function linkHoldingCancel(fn: string, ctx: CancelCtx, parent: Context): void {
  const [, cancel] = cancelable(fn, ctx, parent);
  if (ctx._error === null) heldCancels.set(ctx, cancel);
}

/** releaseHeldCancel lets go of `ctx`'s cancel function, if it was held: call it from the context's _release(). */
export function releaseHeldCancel(ctx: CancelCtx): void {
  if (heldCancels.size !== 0) heldCancels.delete(ctx);
}
