/**
 * The context of one grpc-js server call: one node of the tree, with no
 * timer of its own. grpc-js already runs a timer for every call that has a
 * deadline, and when it fires it sends DEADLINE_EXCEEDED, closes the stream
 * and emits `"cancelled"` on the call: that event ends the context at the
 * deadline too, so a call costs one context and one listener, where a
 * cancelable child plus a deadline child (withCancelCause + withDeadline)
 * cost two contexts, two cancel functions and a setTimeout/clearTimeout
 * pair.
 */
import { CancelCtx } from "../cancel-ctx.js";
import { linkHoldingCancel, releaseHeldCancel } from "../held-cancel.js";
import { deadlineOf, type Context } from "../context.js";
import { hooks } from "../debug-hooks.js";
import { Canceled, DeadlineExceeded } from "../errors.js";
import { cancelOrDeadlineLabel } from "../fetch/deadline-label.js";
import { adopt, attach } from "../propagate.js";
import { CallCancelledError } from "./errors.js";
import { CANCEL_NEAR_DEADLINE_MS, epochMs } from "./status.js";
import type { ServerCall } from "./types.js";

/**
 * Where a call keeps the context that owns the shared `"cancelled"`
 * listener: set when the first context is made for the call, it dies with
 * the call.
 */
const kCallCtx = Symbol("taproot.grpcCallContext");

type TrackedCall = ServerCall & { [kCallCtx]?: CallCtx };

type Timer = ReturnType<typeof setTimeout>;

/**
 * CallCtx is a server call's context: canceled by the call's `"cancelled"`
 * event (the client left, or grpc-js's deadline timer fired), by its parent,
 * or by `end()` once the handler is done.
 */
export class CallCtx extends CancelCtx {
  /** The call this context follows. */
  readonly _call: TrackedCall;
  /** The call's own deadline (epoch ms); Infinity when the caller set none. */
  readonly _callDeadline: number;
  /** The `"cancelled"` listener on the call; set at creation unless born done, removed by _release. */
  _listener: (() => void) | null;
  /**
   * Armed only when the call was cancelled a moment before its deadline (a
   * client gives up at its own deadline, which reaches the server a little
   * ahead of the server's): ends the context at the deadline. Cleared when
   * it fires or by _release.
   */
  _timer: Timer | null;

  constructor(parent: Context, fn: string, call: TrackedCall, callDeadline: number) {
    const inherited = deadlineOf(fn, parent);
    super(
      parent,
      inherited !== undefined && inherited <= callDeadline
        ? inherited
        : callDeadline === Infinity
          ? undefined
          : callDeadline,
    );
    this._call = call;
    this._callDeadline = callDeadline;
    this._listener = null;
    this._timer = null;
  }

  override _label(): string {
    return cancelOrDeadlineLabel(this);
  }

  override _release(): void {
    const listener = this._listener;
    if (listener !== null) {
      this._listener = null;
      this._call.removeListener("cancelled", listener);
    }
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
    releaseHeldCancel(this);
  }

  /** end cancels the context because the call is over (cause `Canceled`): the handler is done. */
  end(): void {
    this._cancel(Canceled, Canceled);
  }

  /**
   * cancelled reads grpc-js's `"cancelled"` event. grpc-js emits it after a
   * status was sent, at the deadline, and when the client cancels: after
   * end() the context is already done and it changes nothing; at (or a
   * moment before) the deadline the verdict is DeadlineExceeded, given when
   * the deadline has come; otherwise the client left.
   */
  cancelled(): void {
    if (this._error !== null || this._timer !== null) return;
    const deadline = this._callDeadline;
    if (deadline !== Infinity) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this._cancel(DeadlineExceeded, DeadlineExceeded);
        return;
      }
      if (left <= CANCEL_NEAR_DEADLINE_MS) {
        const t = setTimeout(expire, left, this);
        (t as { unref?: () => void }).unref?.();
        this._timer = t;
        return;
      }
    }
    this._cancel(Canceled, new CallCancelledError(this._call.getPath?.() ?? ""));
  }
}

function expire(ctx: CallCtx): void {
  ctx._timer = null;
  ctx._cancel(DeadlineExceeded, DeadlineExceeded);
}

/** The listener of the call's first context: `this` is the call, so no closure per call. */
function onCancelled(this: TrackedCall): void {
  this[kCallCtx]?.cancelled();
}

/**
 * newCallContext makes the context of `call` under `parent` (already
 * checked by the caller; `fn`, the function the user called, is named in
 * errors about it) and starts following the call.
 */
export function newCallContext(parent: Context, call: ServerCall, fn: string): CallCtx {
  const tracked = call as TrackedCall;
  const c = new CallCtx(parent, fn, tracked, epochMs(call.getDeadline()));
  // cancelable() would also make a cancel function: only needed while
  // something watches for leaked contexts (taproot-context/testing), and
  // then held-cancel.ts holds it until the call ends.
  if (hooks !== null) linkHoldingCancel(fn, c, parent);
  else if (parent instanceof CancelCtx && parent._error === null) adopt(fn, "parent", parent, c);
  else attach(fn, "parent", c, parent);
  if (c._error !== null) return c;
  // A deadline already past (grpc-timeout "0m" or "1n", or one over 2^31-1
  // ms, which grpc-js's `timeout | 0` wraps into the past) ends the context
  // at once, as withDeadline does: grpc-js's own timer sends
  // DEADLINE_EXCEEDED a millisecond later.
  if (c._callDeadline <= Date.now()) {
    c._cancel(DeadlineExceeded, DeadlineExceeded);
    return c;
  }
  if (call.cancelled) {
    c.cancelled();
    return c;
  }
  // The call's first context shares one listener function; another made
  // for the same call (callContext called twice) gets a closure of its own.
  let listener: () => void;
  if (tracked[kCallCtx] === undefined) {
    tracked[kCallCtx] = c;
    listener = onCancelled;
  } else listener = () => c.cancelled();
  c._listener = listener;
  call.on("cancelled", listener);
  return c;
}
