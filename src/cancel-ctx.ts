import type { Context } from "./context.js";
import { BaseCtx, cancelCtxKey, valueSourceOf } from "./context.js";
import type { ChildNode, Listener, Owner } from "./child-list.js";
import { detachAll, unlink } from "./child-list.js";
import type { Key } from "./key.js";

/** Deferred is what done() creates on first use: the Promise and, until the first cancel, its resolver. */
interface Deferred {
  readonly promise: Promise<void>;
  resolve: (() => void) | null;
}

const settled: Deferred = { promise: Promise.resolve(), resolve: null };

/**
 * CancelCtx is the one cancellation engine, Go's cancelCtx: withCancel makes
 * one, and TimerCtx (deadline.ts) and SignalCtx (signal.ts) are thin
 * subclasses that add only what they hold outside the tree while live, and
 * release it in `_release()`. It owns its live children, its error and its
 * cause; propagation from the parent is in propagate.ts.
 */
export class CancelCtx extends BaseCtx implements ChildNode, Owner {
  /** Set by the first cancel (own, parent's, timer's or signal's); never changes after. */
  _error: Error | null;
  /** Why: set with _error by the first cancel (Canceled unless a cause was given); never changes after. */
  _cause: unknown;
  /** The first live child; set by link and unlink, cleared by the first cancel. */
  _head: ChildNode | null;
  /** Neighbours in the owner's list; set by link, cleared by unlink or the first cancel. */
  _next: ChildNode | null;
  _prev: ChildNode | null;
  /** The list this context is in: the nearest cancelable ancestor's, or a bridge's; cleared by the first cancel. */
  _owner: Owner | null;
  /** Created lazily by done(); its resolver is called by the first cancel. */
  _done: Deferred | null;
  /** Created lazily by the signal getter; aborted by the first cancel. */
  _controller: AbortController | null;
  /** How many children the list holds; changed by link and unlink, zeroed by the first cancel. */
  _count: number;
  /**
   * Where value() goes on from here, set at creation: the nearest ancestor
   * that can hold values (a value context, or a user's context), or null if
   * there is none. Cancelable contexts hold no values themselves.
   */
  _values: Context | null;

  constructor(parent: Context, deadline: number | undefined) {
    super();
    // The fields a tree cancel touches come first, so that they share as
    // few cache lines as possible: a large tree is scattered over the heap.
    this._error = null;
    this._cause = null;
    this._head = null;
    this._next = null;
    this._prev = null;
    this._owner = null;
    this._done = null;
    this._controller = null;
    this._count = 0;
    this._parent = parent;
    this._deadline = deadline;
    // A parent of ours first: the common case, without a call.
    this._values = parent instanceof CancelCtx ? parent._values : valueSourceOf(parent);
  }

  done(): Promise<void> {
    let d = this._done;
    if (d === null) {
      if (this._error !== null) d = settled;
      else {
        let resolve: (() => void) | null = null;
        const promise = new Promise<void>((r) => {
          resolve = r;
        });
        d = { promise, resolve };
      }
      try {
        this._done = d;
      } catch (e) {
        throw frozen("ctx.done(): the context is frozen", e);
      }
    }
    return d.promise;
  }

  err(): Error | null {
    return this._error;
  }

  value<T>(key: Key<T>): T | undefined;
  value(key: unknown): unknown;
  value(key: unknown): unknown {
    if (key === cancelCtxKey) return this;
    const v = this._values;
    return v === null ? undefined : v.value(key);
  }

  get signal(): AbortSignal {
    let c = this._controller;
    if (c === null) {
      c = new AbortController();
      try {
        this._controller = c;
      } catch (e) {
        throw frozen("ctx.signal: the context is frozen", e);
      }
      if (this._error !== null) c.abort(this._error);
    }
    return c.signal;
  }

  _label(): string {
    return ".WithCancel";
  }

  /** _cancel is what a cancel function, a timer or an outside signal calls: leave the owner's list, then cancel the subtree. */
  _cancel(error: Error, cause: unknown): void {
    if (this._error !== null) return;
    const owner = this._owner;
    if (owner !== null) {
      try {
        unlink(owner, this);
      } catch (e) {
        throw frozen("cancel(): the context is frozen", e);
      }
    }
    cancelTree(this, error, cause);
  }

  _cancelSource(): Context {
    return this;
  }

  _valueSource(): Context | null {
    return this._values;
  }

  /** _release drops what a kind holds outside the tree while live: nothing for withCancel. Called once, by the first cancel. */
  _release(): void {}
}

/**
 * frozen explains a write that failed on a context frozen with
 * Object.freeze; `lead` names what the user called and what is frozen. Any
 * other error is returned as it is, to be rethrown.
 */
export function frozen(lead: string, error: unknown): unknown {
  if (!(error instanceof TypeError)) return error;
  return new TypeError(
    `${lead} (Object.freeze); a cancelable context changes when it is canceled, so it must not be frozen: freeze the data you carry in it instead`,
    { cause: error },
  );
}

/**
 * cancelTree marks root and every live descendant done with error and cause
 * (a root that is a listener, not a context, is told instead).
 * Two phases: first every error is set, timers and outside listeners
 * released, done() promises resolved (none of which runs user code
 * synchronously); then the signals that exist are aborted, so that any abort
 * listener already sees the whole subtree done. The walk visits each node
 * once, following the child lists themselves; it keeps only the siblings
 * still to visit above the current node, so a chain of any depth or a flat
 * list of any width needs no stack. A descendant that a user froze cannot be
 * marked: the walk goes on past it and reports it once everything else is
 * done.
 */
export function cancelTree(root: ChildNode, error: Error, cause: unknown): void {
  let controllers: AbortController[] | null = null;
  let resume: ChildNode[] | null = null;
  let frozenCount = 0;
  // root is in no list: its caller took it out, or it was never in one.
  let n: ChildNode = root;
  for (;;) {
    let down: ChildNode | null = null;
    let writable = true;
    if (n instanceof CancelCtx) {
      if (n._error === null) {
        try {
          n._error = error;
        } catch {
          writable = false;
          frozenCount++;
          down = n._head;
        }
        if (writable) {
          n._cause = cause;
          n._release();
          const d = n._done;
          if (d !== null && d.resolve !== null) {
            d.resolve();
            d.resolve = null;
          }
          if (n._controller !== null) (controllers ??= []).push(n._controller);
          down = n._head;
          if (down !== null) {
            n._head = null;
            n._count = 0;
          }
        }
      }
    } else {
      n._owner = null;
      (n as Listener)._fire(error, cause);
    }
    const next = n._next;
    if (writable) {
      n._prev = null;
      n._next = null;
      n._owner = null;
    }
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
  if (controllers !== null) for (const c of controllers) c.abort(error);
  if (frozenCount > 0) {
    if ((root as CancelCtx)._error === null) {
      throw frozen("cancel(): the context is frozen", new TypeError());
    }
    throw frozen(
      `cancel(): ${frozenCount} frozen context(s) under this one stay live`,
      new TypeError(),
    );
  }
}

/**
 * fire tells a child that its owner is done, whatever kind of child it is:
 * it is cancelTree, whose walk tells a listener (an afterFunc, a signal
 * follower) as it tells a context. The child must be in no list.
 */
export { cancelTree as fire };

/**
 * fireAll empties owner's list, then tells each child that was in it. It
 * runs where no caller could take an error (an outside signal's "abort"
 * listener, a user's done() callback), so a child that cannot be told, one
 * the user froze, is skipped and its siblings still end; the frozen context
 * stays live, and refuses every use with a TypeError.
 */
export function fireAll(owner: Owner, error: Error, cause: unknown): void {
  for (const c of detachAll(owner)) {
    try {
      cancelTree(c, error, cause);
    } catch {
      // A frozen child (or one under it): the rest go on, and it stays live.
    }
  }
}
