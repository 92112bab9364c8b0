import type { Context } from "./context.js";
import { Node, cancelCtxKey, deadlineOf } from "./context.js";
import { Canceled } from "./errors.js";
import { hooks } from "./debug-hooks.js";
import type { Key } from "./key.js";
import { checkContext } from "./validate.js";

/**
 * CancelFunc cancels its context and every descendant, synchronously. It is
 * idempotent, and a `Disposable`: declare it with `using` and the context is
 * canceled when the scope ends.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withTimeout(parent, 1_000);
 * using _ = cancel; // canceled when the block ends, like Go's defer cancel()
 * await work(ctx);
 * ```
 */
export type CancelFunc = (() => void) & Disposable;

/**
 * CancelCauseFunc is a {@link CancelFunc} that records why: `cause(ctx)`
 * returns the first cause given (`undefined` or `null` record `Canceled`).
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancelCause(parent);
 * socket.on("error", (err) => cancel(err)); // cause(ctx) === err
 * ```
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
}

/**
 * Listener is a ChildNode that is not a context: told once when its owner is
 * done. It remembers its list itself; a child context finds its list from
 * its parent instead (ownerOf), which keeps every context a field smaller.
 */
export interface Listener extends ChildNode {
  /** The list this node is in; null once unlinked or fired. */
  _owner: Owner | null;
  _fire(err: Error, cause: unknown): void;
}

/** Owner is a list head: a cancelable context, the bridge that follows a user's context, or a signal's followers. */
export interface Owner {
  _head: ChildNode | null;
  /** How many children the list holds. */
  _n: number;
}

/** Deferred is what done() creates on first use: the Promise and, until the first cancel, its resolver. */
interface Deferred {
  readonly p: Promise<void>;
  r: (() => void) | null;
}

const settled: Deferred = { p: Promise.resolve(), r: null };

/** The part of a ValueCtx that cancellation needs (value.ts builds on this module, not the other way). */
interface ValueLike {
  /** The nearest cancelable ancestor: one of ours, a user's context, or null if none can cancel. */
  _src: Context | null;
}

/**
 * CancelCtx is the one cancellation engine: withCancel makes one, and the
 * deadline and signal kinds are thin subclasses that only add what `_x`
 * holds while the context is live. Eleven fields: a live child with its cancel
 * function stays under 200 bytes.
 */
export class CancelCtx extends Node implements ChildNode, Owner {
  /**
   * Where value() goes on from here: the nearest ancestor that is a value
   * context or a user's context (cancelable contexts hold no values).
   */
  _vals: Context | null;
  /** Set once by the first cancel (own, parent's, timer's or signal's); never changes after. */
  _err: Error | null;
  /** Created lazily by done(); its resolver is called by the first cancel. */
  _done: Deferred | null;
  /** Created lazily by the signal getter; aborted by the first cancel. */
  _ctrl: AbortController | null;
  /** The live children: a doubly linked list through their _prev/_next. */
  _head: ChildNode | null;
  _n: number;
  _prev: ChildNode | null;
  _next: ChildNode | null;
  /**
   * While live, what the kind holds outside the tree: the deadline timer or
   * the place among an outside signal's followers (null for withCancel).
   * Once done, the cause. One slot for both, as they never overlap.
   */
  _x: unknown;

  constructor(parent: Context) {
    super();
    // The fields a tree cancel touches come first, so that they share as
    // few cache lines as possible: a large tree is scattered over the heap.
    this._err = null;
    this._x = null;
    this._head = null;
    this._next = null;
    this._prev = null;
    this._done = null;
    this._ctrl = null;
    this._n = 0;
    this._parent = parent;
    this._dl = deadlineOf(parent);
    this._vals = parent instanceof CancelCtx ? parent._vals : parent;
  }

  done(): Promise<void> {
    let d = this._done;
    if (d === null) {
      if (this._err !== null) d = settled;
      else {
        let r: (() => void) | null = null;
        const p = new Promise<void>((resolve) => {
          r = resolve;
        });
        d = { p, r };
      }
      this._done = d;
    }
    return d.p;
  }

  err(): Error | null {
    return this._err;
  }

  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  value(key: unknown): unknown {
    if (key === cancelCtxKey) return this;
    const v = this._vals;
    return v === null ? undefined : v.value(key);
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
    return ".WithCancel";
  }

  /** _cancel is what a cancel function, a timer or an outside signal calls: detach from the parent, then cancel the subtree. */
  _cancel(err: Error, cause: unknown): void {
    if (this._err !== null) return;
    const o = ownerOf(this);
    if (o !== null) unlink(o, this);
    cancelTree(this, err, cause);
  }

  /** _release drops what a kind holds outside the tree while live (x: the value of _x). */
  _release(_x: unknown): void {}
}

/** The list a child of a user's context went into: the bridge, or the taproot context that the user's wraps. */
const viaForeign = new WeakMap<CancelCtx, Owner>();

/** srcOf returns the nearest cancelable context, parent itself or an ancestor: ours, a user's, or null if none can cancel. */
export function srcOf(parent: Context): Context | null {
  return parent instanceof CancelCtx
    ? parent
    : parent instanceof Node
      ? (parent as unknown as ValueLike)._src
      : parent;
}

/** ownerOf returns the list a live context is in: its nearest cancelable ancestor's, or null if it has none. */
function ownerOf(c: CancelCtx): Owner | null {
  const p = c._parent as Context;
  if (p instanceof CancelCtx) return p;
  const s = srcOf(p);
  if (s === null) return null;
  if (s instanceof CancelCtx) return s;
  return viaForeign.get(c) ?? null;
}

/** link puts child at the head of owner's list. */
export function link(owner: Owner, child: ChildNode): void {
  const h = owner._head;
  child._next = h;
  if (h !== null) h._prev = child;
  owner._head = child;
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
  owner._n--;
}

/**
 * cancelTree marks root and every live descendant done with err and cause.
 * Two phases: first every err is set, timers and outside listeners released,
 * done() promises resolved (none of which runs user code synchronously);
 * then the signals that exist are aborted, so that any abort listener
 * already sees the whole subtree done. The walk visits each node once,
 * following the child lists themselves; it keeps only the siblings still to
 * visit above the current node, so a chain of any depth or a flat list of
 * any width needs no stack.
 */
export function cancelTree(root: CancelCtx, err: Error, cause: unknown): void {
  let ctrls: AbortController[] | null = null;
  let resume: ChildNode[] | null = null;
  // root is in no list: its caller took it out, or it was never in one.
  let n: ChildNode = root;
  for (;;) {
    let down: ChildNode | null = null;
    if (n instanceof CancelCtx) {
      if (n._err === null) {
        const x = n._x;
        if (x !== null) n._release(x);
        n._err = err;
        n._x = cause;
        const d = n._done;
        if (d !== null && d.r !== null) {
          d.r();
          d.r = null;
        }
        if (n._ctrl !== null) (ctrls ??= []).push(n._ctrl);
        down = n._head;
        if (down !== null) {
          n._head = null;
          n._n = 0;
        }
      }
    } else {
      tell(n as Listener, err, cause);
    }
    const next = n._next;
    n._prev = null;
    n._next = null;
    if (down !== null) {
      if (next !== null) (resume ??= []).push(next);
      n = down;
    } else if (next !== null) {
      n = next;
    } else {
      const r = resume === null ? undefined : resume.pop();
      if (r === undefined) break;
      n = r;
    }
  }
  if (ctrls !== null) for (const c of ctrls) c.abort(err);
}

/** fire tells a child that its parent is done, whatever kind of child it is. */
function fire(child: ChildNode, err: Error, cause: unknown): void {
  if (child instanceof CancelCtx) cancelTree(child, err, cause);
  else tell(child as Listener, err, cause);
}

/** tell fires a listener, which is in no list from then on. */
function tell(l: Listener, err: Error, cause: unknown): void {
  l._owner = null;
  l._fire(err, cause);
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
  for (let c = owner._head; c !== null;) {
    const next: ChildNode | null = c._next;
    c._prev = c._next = null;
    children.push(c);
    c = next;
  }
  owner._head = null;
  owner._n = 0;
  for (const c of children) fire(c, err, why);
}

const bridges = new WeakMap<Context, Bridge>();

/**
 * attach makes `child` follow `parent`'s cancellation. The ladder of cases,
 * as in Go's propagateCancel:
 */
export function attach(child: ChildNode, parent: Context): void {
  const p = srcOf(parent);
  // Parent can never be canceled: nothing to do.
  if (p === null) return;
  if (p instanceof CancelCtx) {
    // Parent is one of ours and already done: the child is born done.
    if (p._err !== null) fire(child, p._err, p._x);
    // Parent is one of ours and live: register as its child.
    else adopt(p, child);
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
    if (inner._err !== null) fire(child, inner._err, inner._x);
    else adopt(inner, child, true);
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
  adopt(b, child, true);
}

/** adopt links child into owner's list; a context that reached it through a user's context remembers where. */
function adopt(owner: Owner, child: ChildNode, foreign = false): void {
  link(owner, child);
  if (child instanceof CancelCtx) {
    if (foreign) viaForeign.set(child, owner);
  } else (child as Listener)._owner = owner;
}

/**
 * cancelable links a new cancelable context under parent (or finds it born
 * done) and makes its cancel function: `cancel` bound to it, by default the
 * one that ignores a cause.
 */
export function cancelable(
  c: CancelCtx,
  parent: Context,
  cancel: (this: CancelCtx, why?: unknown) => void = cancelCanceled,
): [CancelCtx, CancelCauseFunc] {
  // The common case first, the first rung of attach's ladder: a live parent of ours.
  if (parent instanceof CancelCtx && parent._err === null) link(parent, c);
  else attach(c, parent);
  return [c, disposable(c, cancel.bind(c))];
}

function cancelCanceled(this: CancelCtx): void {
  this._cancel(Canceled, Canceled);
}

function cancelWithCause(this: CancelCtx, why?: unknown): void {
  this._cancel(Canceled, why ?? Canceled);
}

/**
 * disposable makes f, which cancels c, a Disposable too, and tells the debug
 * hooks about c. f is bound: a bound function is the smallest function
 * object there is (and one whose prototype is not Function.prototype is
 * slow to make), so the dispose property costs one small array.
 */
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
  checkContext("withCancel(parent)", "parent", parent);
  return cancelable(new CancelCtx(parent), parent);
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
  checkContext("withCancelCause(parent)", "parent", parent);
  return cancelable(new CancelCtx(parent), parent, cancelWithCause);
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
  checkContext("cause(ctx)", "ctx", ctx);
  const cc = ctx.value(cancelCtxKey);
  if (cc instanceof CancelCtx && cc._err !== null) return cc._x;
  return ctx.err();
}
