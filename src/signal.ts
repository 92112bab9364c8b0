import type { Context } from "./context.js";
import type { CancelFunc } from "./cancel.js";
import { KIND_SIGNAL, cancelFunc, newCancelCtx } from "./cancel.js";
import { Canceled, DeadlineExceeded } from "./errors.js";
import { describe } from "./key.js";
import { checkContext } from "./validate.js";

/** errFor maps an abort reason to the context error it stands for. */
function errFor(reason: unknown): Error {
  return (reason as { name?: unknown } | null)?.name === "TimeoutError"
    ? DeadlineExceeded
    : Canceled;
}

function isSignal(s: unknown): s is AbortSignal {
  if (typeof AbortSignal !== "undefined" && s instanceof AbortSignal) return true;
  // A signal from another realm (an iframe, a vm context) fails instanceof but works the same.
  const t = s as Partial<AbortSignal> | null;
  return (
    typeof t === "object" &&
    t !== null &&
    typeof t.aborted === "boolean" &&
    typeof t.addEventListener === "function" &&
    typeof t.removeEventListener === "function"
  );
}

/**
 * withSignal returns a child of `parent` that is also canceled when `signal`
 * aborts: `cause(ctx)` is then `signal.reason`, and `ctx.err()` is
 * `DeadlineExceeded` if the reason's name is `"TimeoutError"`, else
 * `Canceled`. Use it to bring an `AbortSignal` from elsewhere (a Fetch API
 * `Request`, a UI button) into a context tree.
 *
 * Call cancel as soon as the work is done: it removes the listener from
 * `signal`, so a long-lived signal never accumulates listeners.
 *
 * @example
 * ```ts
 * export async function GET(request: Request) {
 *   const [ctx, cancel] = withSignal(background(), request.signal);
 *   try {
 *     return Response.json(await search(ctx, new URL(request.url).searchParams));
 *   } finally {
 *     cancel();
 *   }
 * }
 * ```
 */
export function withSignal(parent: Context, signal: AbortSignal): [Context, CancelFunc] {
  checkContext("withSignal(parent, signal)", parent);
  if (!isSignal(signal)) {
    throw new TypeError(
      `withSignal(parent, signal): signal must be an AbortSignal, got ${describe(signal)}; pass request.signal or controller.signal`,
    );
  }
  const c = newCancelCtx(parent, KIND_SIGNAL);
  const f = cancelFunc(c);
  if (c._err === null) {
    if (signal.aborted) {
      c._cancel(errFor(signal.reason), signal.reason);
    } else {
      // Removed by the first cancel of c, whatever its origin (CancelCtx._release).
      const onAbort = (): void => c._cancel(errFor(signal.reason), signal.reason);
      c._x = onAbort;
      c._xc = signal;
      signal.addEventListener("abort", onAbort);
    }
  }
  return [c, f];
}
