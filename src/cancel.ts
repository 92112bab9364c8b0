import type { Context } from "./context.js";
import { Node, cancelCtxKey, neverSignal } from "./context.js";
import { Canceled } from "./errors.js";
import { formatDuration } from "./format.js";
import { hooks } from "./debug-hooks.js";
import { checkContext } from "./validate.js";

/**
 * CancelFunc cancels its context and every descendant, synchronously. It is
 * idempotent, and a `Disposable`: declare it with `using` and the context is
 * canceled when the scope ends.
 */
export type CancelFunc = (() => void) & Disposable;

/**
 * CancelCauseFunc is a {@link CancelFunc} that records why: `cause(ctx)`
 * returns the first cause given (`undefined` or `null` record `Canceled`).
 */
export type CancelCauseFunc = ((cause?: unknown) => void) & Disposable;

const DISPOSE: typeof Symbol.dispose =
  Symbol.dispose ?? (Symbol.for("Symbol.dispose") as typeof Symbol.dispose);

/**
 * ChildNode is anything a cancelable context keeps in its list of live
 * children: a child context, an afterFunc registration, a pending sleep.
 * The list is intrusive (the links live in the child) so linking and
 * unlinking are O(1) and allocate nothing.
 */
export interface ChildNode {
  _prev: ChildNode | null;
  _next: ChildNode | null;
  /** The list this node is in; null once unlinked. */
  _owner: Owner | null;
}

/** A ChildNode that is not a context: told once when its owner is done. */
export interface Listener extends ChildNode {
  _fire(err: Error, cause: unknown): void;
}

/** Owner is a list head: a cancelable context, or the bridge that follows a user's context. */
export interface Owner {
  _head: ChildNode | null;
  /** Live children in the list. */
  _n: number;
}

/** Kinds of cancelable context; they differ only in what _x holds and how they print. */
export type Kind = 0 | 1 | 2;
export const KIND_CANCEL = 0;
export const KIND_DEADLINE = 1;
export const KIND_SIGNAL = 2;

type Timer = ReturnType<typeof setTimeout>;

/** CancelCtx is the one cancellation engine: withCancel, withDeadline and withSignal all make one. */
export class CancelCtx extends Node implements ChildNode, Owner {
  /** Set once by the first cancel (own, parent's, timer's or signal's); never changes after. */
  _err: Error | null = null;
  /** Set together with _err. */
  _cause: unknown = undefined;
  /** Created lazily by done(); resolved by the first cancel. */
  _done: Promise<void> | null = null;
  _resolve: (() => void) | null = null;
  /** Created lazily by the signal getter; aborted by the first cancel. */
  _ctrl: AbortController | null = null;
  _head: ChildNode | null = null;
  _n = 0;
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  _kind: Kind;
  /** Deadline: the pending timer. Signal: its place among the outside signal's followers. Cleared by the first cancel. */
  _x: Timer | { _drop(): void } | null = null;
  /** Deadline: the cause to record when the timer fires. */
  _xc: unknown = undefined;

  constructor(parent: Context, kind: Kind) {
    super(parent, cancelCtxKey, undefined);
    this._val = this;
    this._src = this;
    this._kind = kind;
  }

  done(): Promise<void> {
    let d = this._done;
    if (d === null) {
      d =
        this._err !== null
          ? resolved
          : new Promise<void>((resolve) => {
              this._resolve = resolve;
            });
      this._done = d;
    }
    return d;
  }

  err(): Error | null {
    return this._err;
  }

  get signal(): AbortSignal {
    let c = this._ctrl;
    if (c === null) {
      c = this._ctrl = new AbortController();
      if (this._err !== null) c.abort(this._err);
    }
    return c.signal;
  }

  _label(): string {
    if (this._kind === KIND_DEADLINE) {
      const dl = this._dl as number;
      // Dates end at ±8.64e15 ms: a deadline beyond still works, and prints as the last date.
      const when = new Date(Math.max(-8.64e15, Math.min(dl, 8.64e15))).toISOString();
      return `.WithDeadline(${when} [${formatDuration(dl - Date.now())}])`;
    }
    return this._kind === KIND_SIGNAL ? ".WithSignal" : ".WithCancel";
  }

  /** _cancel is what a cancel function, a timer or an outside signal calls: detach from the parent, then cancel the subtree. */
  _cancel(err: Error, cause: unknown): void {
    if (this._err !== null) return;
    const o = this._owner;
    if (o !== null) unlink(o, this);
    cancelTree(this, err, cause);
  }

  /** _release drops what the kind holds outside the tree: the deadline timer or the listener on an outside signal. */
  _release(): void {
    const x = this._x;
    this._x = null;
    if (this._kind === KIND_SIGNAL) {
      (x as unknown as { _drop(): void })._drop();
    } else {
      clearTimeout(x as Timer);
    }
  }
}

const resolved: Promise<void> = Promise.resolve();

/** link puts child at the head of owner's list. */
export function link(owner: Owner, child: ChildNode): void {
  const h = owner._head;
  child._next = h;
  if (h !== null) h._prev = child;
  owner._head = child;
  child._owner = owner;
  const n = ++owner._n;
  if (hooks !== null && n > hooks.childLimit) {
    hooks.tooManyChildren(owner instanceof Bridge ? owner._ctx : (owner as CancelCtx), n);
  }
}

/** unlink takes child out of owner's list. */
export function unlink(owner: Owner, child: ChildNode): void {
  const prev = child._prev;
  const next = child._next;
  if (prev === null) owner._head = next;
  else prev._next = next;
  if (next !== null) next._prev = prev;
  child._prev = null;
  child._next = null;
  child._owner = null;
  owner._n--;
}

/**
 * cancelTree marks root and every live descendant done with err and cause.
 * Two phases: first every err is set, timers and outside listeners released,
 * done() promises resolved (none of which runs user code synchronously);
 * then the signals that exist are aborted, so that any abort listener
 * already sees the whole subtree done. The walk uses an explicit stack: a
 * chain of any depth cannot overflow the call stack.
 */
export function cancelTree(root: CancelCtx, err: Error, cause: unknown): void {
  let ctrls: AbortController[] | null = null;
  let stack: ChildNode[] | null = null;
  let n: ChildNode | undefined = root;
  while (n !== undefined) {
    if (n instanceof CancelCtx) {
      if (n._err === null) {
        n._err = err;
        n._cause = cause;
        if (n._x !== null) n._release();
        const r = n._resolve;
        if (r !== null) {
          n._resolve = null;
          r();
        }
        if (n._ctrl !== null) (ctrls ??= []).push(n._ctrl);
        let c = n._head;
        if (c !== null) {
          stack ??= [];
          while (c !== null) {
            const next: ChildNode | null = c._next;
            c._prev = null;
            c._next = null;
            c._owner = null;
            stack.push(c);
            c = next;
          }
          n._head = null;
          n._n = 0;
        }
      }
    } else {
      (n as Listener)._fire(err, cause);
    }
    n = stack === null ? undefined : stack.pop();
  }
  if (ctrls !== null) for (const c of ctrls) c.abort(err);
}

/** fire tells a child that its parent is done, whatever kind of child it is. */
function fire(child: ChildNode, err: Error, cause: unknown): void {
  if (child instanceof CancelCtx) cancelTree(child, err, cause);
  else (child as Listener)._fire(err, cause);
}

/**
 * Bridge follows a user's own context: one subscription to its done()
 * promise per user context, however many children come and go. A child
 * unlinks itself from the bridge when it ends, so nothing accumulates.
 */
class Bridge implements Owner {
  _head: ChildNode | null = null;
  _n = 0;
  constructor(readonly _ctx: Context) {}

  _fire(): void {
    bridges.delete(this._ctx);
    const err = this._ctx.err() ?? Canceled;
    fireAll(this, err, cause(this._ctx) ?? err);
  }
}

/** fireAll empties owner's list, then tells each child that was in it: a child may unlink others as it goes. */
export function fireAll(owner: Owner, err: Error, why: unknown): void {
  const children: ChildNode[] = [];
  for (let c = owner._head; c !== null; c = c._next) children.push(c);
  owner._head = null;
  owner._n = 0;
  for (const c of children) {
    c._prev = null;
    c._next = null;
    c._owner = null;
    fire(c, err, why);
  }
}

const bridges = new WeakMap<Context, Bridge>();

/**
 * attach makes `child` follow `parent`'s cancellation. The ladder of cases,
 * as in Go's propagateCancel:
 */
export function attach(child: ChildNode, parent: Context): void {
  const p = parent instanceof Node ? parent._src : parent;
  // Parent can never be canceled: nothing to do.
  if (p === null) return;
  if (p instanceof CancelCtx) {
    // Parent is one of ours and already done: the child is born done.
    if (p._err !== null) fire(child, p._err, p._cause);
    // Parent is one of ours and live: register as its child.
    else link(p, child);
    return;
  }
  // Any other Context that is already done: born done, adopting its err and cause.
  const err = p.err();
  if (err !== null) {
    fire(child, err, cause(p) ?? err);
    return;
  }
  const d = p.done();
  if (d === null) return;
  // A user's wrapper around one of ours, done() included: register with ours (Go's parentCancelCtx).
  const inner = p.value(cancelCtxKey);
  if (inner instanceof CancelCtx && inner.done() === d) {
    if (inner._err !== null) fire(child, inner._err, inner._cause);
    else link(inner, child);
    return;
  }
  // Any other Context: follow its done(), and let go when the child ends.
  let b = bridges.get(p);
  if (b === undefined) {
    const bridge = new Bridge(p);
    bridges.set(p, bridge);
    const onDone = (): void => bridge._fire();
    d.then(onDone, onDone);
    b = bridge;
  }
  link(b, child);
}

/** newCancelCtx creates a cancelable child of parent, linked (or born done), and tells the debug hooks. */
export function newCancelCtx(parent: Context, kind: Kind): CancelCtx {
  const c = new CancelCtx(parent, kind);
  c._dl = parent instanceof Node ? parent._dl : parent.deadline()?.getTime();
  attach(c, parent);
  return c;
}

/** cancelFunc returns the idempotent, disposable function that cancels c with Canceled. */
export function cancelFunc(c: CancelCtx): CancelFunc {
  return disposable(c, () => c._cancel(Canceled, Canceled));
}

/** disposable makes f, which cancels c, a Disposable too, and tells the debug hooks about c. */
function disposable<F extends (why?: unknown) => void>(c: CancelCtx, f: F): F & Disposable {
  const d = f as F & Disposable;
  d[DISPOSE] = f;
  if (hooks !== null) hooks.created(c, f);
  return d;
}

/**
 * withCancel returns a child of `parent` and a function that cancels it. The
 * child is done when the cancel function is called or when the parent is
 * done, whichever happens first.
 *
 * Call cancel as soon as the work is done: it releases the child's place in
 * the parent, which otherwise lives as long as the parent does.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancel(parent);
 * try {
 *   await Promise.any([fetch(a, { signal: ctx.signal }), fetch(b, { signal: ctx.signal })]);
 * } finally {
 *   cancel(); // stop the slower request
 * }
 * ```
 */
export function withCancel(parent: Context): [Context, CancelFunc] {
  checkContext("withCancel(parent)", parent);
  const c = newCancelCtx(parent, KIND_CANCEL);
  return [c, cancelFunc(c)];
}

/**
 * withCancelCause is {@link withCancel} whose cancel function records why:
 * `cause(ctx)` returns the value given to the first call (`Canceled` if it
 * was `undefined` or `null`), while `ctx.err()` is `Canceled`.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancelCause(parent);
 * cancel(new Error("upstream closed"));
 * ctx.err();    // Canceled
 * cause(ctx);   // Error: upstream closed
 * ```
 */
export function withCancelCause(parent: Context): [Context, CancelCauseFunc] {
  checkContext("withCancelCause(parent)", parent);
  const c = newCancelCtx(parent, KIND_CANCEL);
  return [c, disposable(c, (why?: unknown) => c._cancel(Canceled, why ?? Canceled))];
}

/**
 * cause returns why `ctx` is done: the first cause recorded on it or on the
 * ancestor whose cancellation reached it (see {@link withCancelCause},
 * `withDeadlineCause`, `withSignal`), else `ctx.err()`; `null` while the
 * context is live. A user's context that delegates `value()` to one of
 * taproot's is seen through.
 *
 * @example
 * ```ts
 * if (ctx.err() !== null) log.warn("stopped", { why: cause(ctx) });
 * ```
 */
export function cause(ctx: Context): unknown {
  if (ctx instanceof CancelCtx) return ctx._err === null ? null : ctx._cause;
  checkContext("cause(ctx)", ctx, "ctx");
  const cc = ctx.value(cancelCtxKey);
  if (cc instanceof CancelCtx && cc._err !== null) return cc._cause;
  return ctx.err();
}

export { neverSignal };
