import type { Context } from "./context.js";
import type { CancelFunc, ChildNode, Listener, Owner } from "./cancel.js";
import { CancelCtx, cancelable, fireAll, link, unlink } from "./cancel.js";
import { Canceled, DeadlineExceeded } from "./errors.js";
import { describeValue } from "./validate.js";
import { checkContext } from "./validate.js";

/** errFor maps an abort reason to the context error it stands for. */
function errFor(reason: unknown): Error {
  return (reason as { name?: unknown } | null)?.name === "TimeoutError"
    ? DeadlineExceeded
    : Canceled;
}

/** isSignal accepts any AbortSignal, also one from another realm (an iframe, a vm context), which fails instanceof. */
function isSignal(s: unknown): s is AbortSignal {
  const t = s as Partial<AbortSignal> | null | undefined;
  return typeof t?.aborted === "boolean";
}

/**
 * Follower is a context's place in the list of an outside signal's
 * followers. A context is already in its parent's list, so following a
 * second source takes a node of its own.
 */
class Follower implements Listener {
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  constructor(readonly _ctx: CancelCtx) {}

  /** The signal aborted. */
  _fire(err: Error, reason: unknown): void {
    this._ctx._cancel(err, reason);
  }

  /** Called by the context's first cancel, whatever its origin. */
  _drop(): void {
    const o = this._owner as Followers | null;
    if (o !== null) {
      unlink(o, this);
      this._owner = null;
      if (o._n === 0) o._stop();
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
  _head: ChildNode | null = null;
  _n = 0;
  constructor(readonly _signal: AbortSignal) {}

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

/** SignalCtx is a CancelCtx whose _x holds its Follower while it is live. */
class SignalCtx extends CancelCtx {
  override _label(): string {
    return ".WithSignal";
  }

  override _release(f: unknown): void {
    (f as Follower)._drop();
  }
}

/** follow makes c canceled when signal aborts. */
function follow(c: SignalCtx, signal: AbortSignal): void {
  let fs = followers.get(signal);
  if (fs === undefined) {
    fs = new Followers(signal);
    followers.set(signal, fs);
  }
  const f = new Follower(c);
  link(fs, f);
  f._owner = fs;
  if (fs._n === 1) fs._start();
  c._x = f;
}

/**
 * withSignal returns a child of `parent` that is also canceled when `signal`
 * aborts: `cause(ctx)` is then `signal.reason`, and `ctx.err()` is
 * `DeadlineExceeded` if the reason's name is `"TimeoutError"`, else
 * `Canceled`. Use it to bring an `AbortSignal` from elsewhere (a Fetch API
 * `Request`, a UI button) into a context tree.
 *
 * Call cancel as soon as the work is done: it lets go of `signal`, which
 * never carries more than one listener from taproot, however many contexts
 * follow it.
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
  checkContext("withSignal(parent, signal)", "parent", parent);
  if (!isSignal(signal)) {
    throw new TypeError(
      `withSignal(parent, signal): signal must be an AbortSignal, got ${describeValue(signal)}; pass request.signal or controller.signal`,
    );
  }
  const c = new SignalCtx(parent);
  const r = cancelable(c, parent);
  if (c._err === null) {
    if (signal.aborted) c._cancel(errFor(signal.reason), signal.reason);
    else follow(c, signal);
  }
  return r;
}
