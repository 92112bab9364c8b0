import type { CancelCtx } from "../cancel-ctx.js";
import { deadlineOf, type Context } from "../context.js";
import { formatDuration } from "../format.js";

/**
 * cancelOrDeadlineLabel is the Go-format label of a cancelable context that
 * may carry a deadline sooner than its parent's (a request's or a gRPC
 * call's): `.WithCancel` when its deadline is none or the parent's,
 * `.WithDeadline(<ISO time> [<time left>])` when it is its own.
 */
export function cancelOrDeadlineLabel(ctx: CancelCtx): string {
  const deadline = ctx._deadline;
  if (deadline === undefined || deadline === deadlineOf("ctx.toString()", ctx._parent as Context))
    return ".WithCancel";
  return `.WithDeadline(${new Date(deadline).toISOString()} [${formatDuration(deadline - Date.now())}])`;
}
