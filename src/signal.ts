import type { Context } from "./context.js";
import { deadlineOf } from "./context.js";
import type { CancelFunc } from "./cancel.js";
import { cancelable } from "./cancel.js";
import { CancelCtx, fireAll } from "./cancel-ctx.js";
import type { ChildNode, Listener, Owner } from "./child-list.js";
import { link, unlink } from "./child-list.js";
import { Canceled, DeadlineExceeded } from "./errors.js";
import { checkContext, describeValue } from "./validate.js";

/**
 * errFor maps an abort reason to the context error it stands for. A reason
 * whose name cannot be read (a revoked Proxy throws) names no timeout: it
 * stands for Canceled, and the followers still end.
 */
function errFor(reason: unknown): Error {
  try {
    if ((reason as { name?: unknown } | null)?.name === "TimeoutError") return DeadlineExceeded;
  } catch {
    // Not read, so no timeout: Canceled, below.
  }
  return Canceled;
}

/**
 * isSignal accepts any AbortSignal, also one from another realm (an iframe,
 * a vm context), which fails instanceof: what taproot uses of it is
 * `aborted`, `reason` and the two listener methods.
 */
function isSignal(s: unknown): s is AbortSignal {
  const t = s as Partial<AbortSignal> | null | undefined;
  return (
    typeof t?.aborted === "boolean" &&
    typeof t.addEventListener === "function" &&
    typeof t.removeEventListener === "function"
  );
}

/**
 * Follower is a context's place in the list of an outside signal's
 * followers. A context is already in its parent's list, so following a
 * second source takes a node of its own.
 */
export class Follower implements Listener {
  /** Neighbours and list among the signal's followers; set by follow, cleared by drop or when the signal aborts. */
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  /** The context that follows the signal; set at creation. */
  readonly _context: CancelCtx;

  constructor(context: CancelCtx) {
    this._context = context;
  }

  /** The signal aborted. */
  _fire(error: Error, reason: unknown): void {
    this._context._cancel(error, reason);
  }

  /** Called by the context's first cancel, whatever its origin. */
  _drop(): void {
    const owner = this._owner as Followers | null;
    if (owner !== null) {
      unlink(owner, this);
      if (owner._count === 0) owner._stop();
    }
  }
}

/**
 * Followers holds every live context that follows one outside signal, with
 * one "abort" listener for all of them, added with the first follower and
 * removed with the last: however many contexts come and go, or live at once,
 * a long-lived signal carries at most one listener from taproot (Node warns
 * past ten: MaxListenersExceededWarning).
 */
class Followers implements Owner {
  /** The live followers; emptied when the signal aborts. */
  _head: ChildNode | null = null;
  _count = 0;
  /** The outside signal; set at creation. */
  readonly _signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this._signal = signal;
  }

  // The list is its own listener (an EventListener object): no closure to keep.
  _start(): void {
    this._signal.addEventListener("abort", this);
  }

  _stop(): void {
    this._signal.removeEventListener("abort", this);
    followers.delete(this._signal);
  }

  /** The signal aborted. */
  handleEvent(): void {
    this._stop();
    const reason = this._signal.reason;
    fireAll(this, errFor(reason), reason);
  }
}

const followers = new WeakMap<AbortSignal, Followers>();

/** SignalCtx is a CancelCtx that also follows an outside AbortSignal. */
export class SignalCtx extends CancelCtx {
  /** Its place among the signal's followers; set by follow, cleared by the first cancel. */
  _follower: Follower | null;

  constructor(parent: Context, deadline: number | undefined) {
    super(parent, deadline);
    this._follower = null;
  }

  override _label(): string {
    return ".WithSignal";
  }

  override _release(): void {
    const f = this._follower;
    if (f !== null) {
      f._drop();
      this._follower = null;
    }
  }
}

/** follow makes c canceled when signal aborts. */
function follow(c: SignalCtx, signal: AbortSignal): void {
  let list = followers.get(signal);
  if (list === undefined) {
    list = new Followers(signal);
    followers.set(signal, list);
  }
  const f = new Follower(c);
  if (link(list, f) === 1) list._start();
  c._follower = f;
}

/**
 * withSignal returns a child of `parent` that is also canceled when `signal`
 * aborts: `cause(ctx)` is then `signal.reason`, and `ctx.err()` is
 * `DeadlineExceeded` if the reason's name is `"TimeoutError"`, else
 * `Canceled` (also when the reason cannot be read, as a revoked Proxy's).
 * Use it to bring an `AbortSignal` from elsewhere (a Fetch API
 * `Request`, a UI button) into a context tree.
 *
 * Call cancel as soon as the work is done: it lets go of `signal`, which
 * never carries more than one listener from taproot, however many contexts
 * follow it.
 *
 * `signal` may come from another realm (an iframe, a `vm` context), but it
 * must be an `AbortSignal`, with `aborted`, `reason`, `addEventListener` and
 * `removeEventListener`; anything else is a `TypeError`.
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
  const fn = "withSignal(parent, signal)";
  checkContext(fn, "parent", parent);
  if (!isSignal(signal)) {
    throw new TypeError(
      `${fn}: signal must be an AbortSignal, got ${describeValue(signal)}; pass request.signal or controller.signal`,
    );
  }
  const c = new SignalCtx(parent, deadlineOf(fn, parent));
  const r = cancelable(fn, c, parent);
  if (c._error === null) {
    if (signal.aborted) c._cancel(errFor(signal.reason), signal.reason);
    else follow(c, signal);
  }
  return r;
}
