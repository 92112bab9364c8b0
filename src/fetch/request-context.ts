/**
 * The context of one incoming request, and the policy it is made from: the
 * part of a request's lifetime that needs no `node:` module (fetchHandler
 * uses it on any runtime; taproot/node's request lifetime builds on it).
 *
 * A request context is one node of the tree, a cancelable context that may
 * also carry the request's deadline. Its deadline has no timer of its own:
 * every request deadline of the same budget waits in one queue, and one timer
 * watches the queue's head (see DeadlineQueue). Node's own `setTimeout` and
 * `clearTimeout` per request cost as much as the rest of the request layer.
 */
import { linkHoldingCancel, releaseHeldCancel } from "../held-cancel.js";
import { CancelCtx, fire } from "../cancel-ctx.js";
import { adopt, attach } from "../propagate.js";
import { unlink } from "../child-list.js";
import { background } from "../background.js";
import { hooks } from "../debug-hooks.js";
import { BaseCtx, cancelSourceOf, deadlineOf, valueSourceOf, type Context } from "../context.js";
import { Canceled, DeadlineExceeded } from "../errors.js";
import { cancelOrDeadlineLabel } from "./deadline-label.js";
import { checkContext, checkMs, checkOptions, describeValue } from "../validate.js";
import { headerBudget } from "./deadline-header.js";
import { requestMonotonic, requestTime } from "./request-clock.js";
import { ClientDisconnectedError, RequestTimeoutError } from "./errors.js";

/**
 * RequestContextOptions shape the context of each request. They are read
 * once, when a request's context is created; later calls return the cached
 * context whatever options they pass.
 *
 * @example
 * ```ts
 * const ctx = requestContext(req, res, {
 *   context: appCtx, // the application's root: its values, its cancellation
 *   timeout: 10_000, // no request runs longer than 10 s
 *   maxHeaderTimeout: 60_000, // callers may ask for less, never for more than a minute
 * });
 * ```
 */
export interface RequestContextOptions {
  /** The parent of the request context: its values are visible and its cancellation reaches the request. Default `background()`. */
  context?: Context;
  /** The time budget of every request in milliseconds, counted from the creation of its context. Default `Infinity` (none). */
  timeout?: number;
  /**
   * Whether the caller's deadline headers (`connect-timeout-ms`, `grpc-timeout`)
   * shorten the request's deadline. They can never lengthen it. Default `true`.
   */
  deadlineHeaders?: boolean;
  /** The largest budget a deadline header may claim, in milliseconds; larger values are clamped to it. Default `Infinity`. */
  maxHeaderTimeout?: number;
}

/** RequestPolicy is a checked RequestContextOptions, resolved once per server or middleware. */
export interface RequestPolicy {
  /** The function the user called to make this policy, named in errors about its parent. */
  fn: string;
  /** The parent of every request context made under this policy. */
  parent: Context;
  /** The queue of deadlines set by `timeout`; null when there is no timeout. */
  timeout: DeadlineQueue | null;
  headers: boolean;
  maxHeader: number;
  /**
   * What every request context needs of the parent, read once here: the
   * effective deadline, where values are looked up, and the context whose
   * cancel ends it. The tree never changes shape, so for one of taproot's
   * own parents they hold for good; a user's context is asked again for
   * its deadline and its cancellation by every request (see ParentFacts).
   */
  facts: ParentFacts;
}

/**
 * ParentFacts are a parent's facts as a request context reads them: what
 * resolvePolicy() and withParent() compute once instead of once per request.
 */
export interface ParentFacts {
  /** The parent is a user's context: its deadline() is asked, and each request context attached to it (propagate.ts), every time. */
  user: boolean;
  /** The parent's effective deadline (epoch ms), when it is one of ours. */
  deadline: number | undefined;
  /** Where a request context's value() goes on: the parent's value source. */
  values: Context | null;
  /**
   * The cancelable context of ours that ends the parent, or null when
   * nothing above can cancel it. Read only when `user` is false; a parent
   * of ours over a user's context counts as a user's (its cancel source).
   */
  owner: CancelCtx | null;
}

/** parentFacts reads what a request context needs of `parent` (see ParentFacts). */
function parentFacts(parent: Context): ParentFacts {
  const source = cancelSourceOf(parent);
  const values = valueSourceOf(parent);
  if (!(parent instanceof BaseCtx) || !(source === null || source instanceof CancelCtx)) {
    return { user: true, deadline: undefined, values, owner: null };
  }
  return { user: false, deadline: parent._deadline, values, owner: source };
}

/** The last options object resolved, and its policy: requestContext() is often given a literal, equal every time. */
let lastOptions: RequestContextOptions | undefined;
let lastPolicy: RequestPolicy | undefined;

/**
 * resolvePolicy checks the options, naming `fn` in errors. An options object
 * equal field by field to the previous one, from the same `fn`, gets the same
 * policy back, so `requestContext(req, res, { timeout: 5_000 })` written
 * inline costs no check and no allocation per request. The policy keeps `fn`
 * to name in errors found later (a user's parent whose deadline() throws), so
 * one function never gets another's.
 */
export function resolvePolicy(
  fn: string,
  options: RequestContextOptions | undefined,
): RequestPolicy {
  checkOptions(fn, options);
  const o = options ?? {};
  const last = lastOptions;
  if (
    last !== undefined &&
    lastPolicy !== undefined &&
    lastPolicy.fn === fn &&
    o.context === last.context &&
    o.timeout === last.timeout &&
    o.deadlineHeaders === last.deadlineHeaders &&
    o.maxHeaderTimeout === last.maxHeaderTimeout
  ) {
    return lastPolicy;
  }
  if (o.context !== undefined) checkContext(fn, "options.context", o.context);
  const timeout =
    o.timeout === undefined ? Infinity : checkMs(fn, "options.timeout", o.timeout, false);
  if (o.deadlineHeaders !== undefined && typeof o.deadlineHeaders !== "boolean") {
    throw new TypeError(
      `${fn}: options.deadlineHeaders must be true or false, got ${describeValue(o.deadlineHeaders)}`,
    );
  }
  const parent = o.context ?? background();
  const policy: RequestPolicy = {
    fn,
    parent,
    timeout: timeout === Infinity ? null : queueFor(timeout, "timeout"),
    headers: o.deadlineHeaders !== false,
    maxHeader:
      o.maxHeaderTimeout === undefined
        ? Infinity
        : checkMs(fn, "options.maxHeaderTimeout", o.maxHeaderTimeout, false),
    facts: parentFacts(parent),
  };
  lastOptions = { ...o };
  lastPolicy = policy;
  return policy;
}

/** withParent returns `policy` with another parent (serve's own server context). */
export function withParent(parent: Context, policy: RequestPolicy): RequestPolicy {
  return { ...policy, parent, facts: parentFacts(parent) };
}

/**
 * How close to its deadline a request whose deadline came from a caller's
 * header may lose its caller and still be said to have hit the deadline: the
 * caller gave up at its own deadline, which is ours plus the time its
 * request took to get here. The larger of 50 ms and 1 % of the budget.
 */
function slackMs(budget: number): number {
  return Math.max(50, budget / 100);
}

/** parentDeadline returns the deadline a request context inherits from the policy's parent. */
export function parentDeadline(policy: RequestPolicy): number | undefined {
  const facts = policy.facts;
  return facts.user ? deadlineOf(policy.fn, policy.parent) : facts.deadline;
}

/**
 * RequestCtx is the context of one request: a cancelable context whose
 * deadline, if any, waits in a DeadlineQueue instead of a timer of its own.
 */
export class RequestCtx extends CancelCtx {
  /** The queue this context's deadline waits in; set by DeadlineQueue.add, cleared by its remove (the first cancel releases it). */
  _queue: DeadlineQueue | null;
  /** The next and previous deadline in the same queue; null when first/last or not queued. */
  _later: RequestCtx | null;
  _sooner: RequestCtx | null;
  /** When the queued deadline expires, on the monotonic clock (performance.now() ms); set by DeadlineQueue.add, read only while queued. */
  _expiresAt: number;

  constructor(policy: RequestPolicy) {
    super(policy.parent, parentDeadline(policy));
    this._queue = null;
    this._later = null;
    this._sooner = null;
    this._expiresAt = 0;
  }

  override _label(): string {
    return cancelOrDeadlineLabel(this);
  }

  override _release(): void {
    const queue = this._queue;
    if (queue !== null) queue.remove(this);
    releaseHeldCancel(this);
  }

  /**
   * end cancels the context because the request is over (cause `Canceled`),
   * releasing its place in the parent and in its deadline queue. It is the
   * request's cancel function, as a method: a request costs no closure.
   */
  end(): void {
    if (this._error !== null) return;
    // The usual request: nothing derived from its context, nothing waiting
    // on done() or .signal. Its cancel is then two writes and leaving its
    // parent's list and its deadline queue, without cancelTree's walk.
    // Anything else, or a frozen context (whose first write throws before
    // anything changed), takes the full cancel.
    if (this._head === null && this._done === null && this._controller === null) {
      try {
        this._error = Canceled;
      } catch {
        this._cancel(Canceled, Canceled);
        return;
      }
      this._cause = Canceled;
      const owner = this._owner;
      if (owner !== null) unlink(owner, this);
      this._release();
      return;
    }
    this._cancel(Canceled, Canceled);
  }

  /**
   * handlerFailed cancels the context because its handler threw or rejected,
   * with that error as cause (`Canceled` for a bare `throw undefined`),
   * unless it had already ended. serve() calls it before it answers 500 or
   * resets a half-sent response (the reset closes the response unfinished,
   * which would otherwise read as the client leaving); fetchHandler() before
   * its promise rejects; the Fastify plugin from its onError hook; the Hono
   * middleware once the chain has returned with `c.error` set.
   */
  handlerFailed(err: unknown): void {
    this._cancel(Canceled, err ?? Canceled);
  }

  /**
   * clientLeft cancels the context because the caller went away: with
   * ClientDisconnectedError as cause, or as its deadline when the deadline
   * came from the caller's headers and had all but passed (the caller gave
   * up at the same deadline, one hop up the chain).
   */
  clientLeft(method: string, url: string): void {
    if (this._error !== null) return;
    const q = this._queue;
    if (q !== null && q.source !== "timeout") {
      if (this._expiresAt - performance.now() <= slackMs(q.ms)) {
        this._cancel(DeadlineExceeded, q.cause());
        return;
      }
    }
    this._cancel(Canceled, new ClientDisconnectedError(method, url));
  }
}

/**
 * newRequestContext derives a request's context from the policy: a
 * cancelable child of the parent, under a deadline when the `timeout` option
 * or the caller's deadline headers (already read, when the policy honours
 * them) set one, the earliest winning. `ctx.end()` ends it, and its
 * deadline with it.
 */
export function newRequestContext(
  policy: RequestPolicy,
  connect: string | string[] | undefined,
  grpc: string | string[] | undefined,
): RequestCtx {
  const c = new RequestCtx(policy);
  startRequestContext(c, policy, connect, grpc);
  return c;
}

/**
 * startRequestContext links a request context just made with the policy's
 * parent and `fn` (a RequestCtx, or a subclass that also carries the
 * request's lifetime, as taproot/node's does) under that parent and its
 * deadline: see newRequestContext.
 */
export function startRequestContext(
  ctx: RequestCtx,
  policy: RequestPolicy,
  connect: string | string[] | undefined,
  grpc: string | string[] | undefined,
): void {
  // cancelable() would also make a cancel function (a bound function and its
  // dispose property): a request needs none but while something watches for
  // leaked contexts (taproot-context/testing), and then held-cancel.ts holds
  // it until the request ends.
  const facts = policy.facts;
  const owner = facts.owner;
  if (hooks !== null) linkHoldingCancel(policy.fn, ctx, policy.parent);
  else if (facts.user) attach(policy.fn, "options.context", ctx, policy.parent);
  else if (owner !== null) {
    if (owner._error === null) adopt(policy.fn, "options.context", owner, ctx);
    else fire(ctx, owner._error, owner._cause);
  }
  if (ctx._error !== null) return;
  let queue = policy.timeout;
  if (connect !== undefined || grpc !== undefined) {
    const hb = headerBudget(connect, grpc);
    if (hb !== undefined) {
      const ms = Math.min(hb.ms, policy.maxHeader);
      if (queue === null || ms < queue.ms) {
        // A parent's deadline that comes first stays (as in add()), and the
        // timeout's queue, of a longer budget, would not take the request
        // either. Decided before queueFor: a header's queue made for a
        // request it does not hold never empties, so is never dropped.
        const inherited = ctx._deadline;
        if (inherited !== undefined && inherited <= requestTime() + ms) return;
        queue = queueFor(ms, hb.source);
      }
    }
  }
  if (queue !== null) queue.add(ctx);
}

/** setTimeout cannot wait longer than 2^31−1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

type Timer = ReturnType<typeof setTimeout>;

/**
 * DeadlineQueue holds the live request contexts that share one budget, in
 * the order they were made, which is the order of their deadlines (each is
 * its creation time plus the same `ms`). One timer waits for the head; it is
 * not moved when the head leaves early, only re-aimed when it fires, so a
 * request costs two links and no timer call. The timer is unref'd, like
 * every deadline timer of taproot: it never keeps a process alive. Expiry
 * goes by the monotonic clock (`_expiresAt`), as the core's deadline timers
 * do: a wall clock stepped back would otherwise stretch every budget by as
 * much.
 */
export class DeadlineQueue {
  /** The earliest and the latest deadline queued; null when empty. Each leaves when it ends. */
  // eslint-disable-next-line taproot/no-stored-context -- a queued context unlinks itself when it ends
  head: RequestCtx | null = null;
  // eslint-disable-next-line taproot/no-stored-context -- as head
  tail: RequestCtx | null = null;
  /** Armed for the head's deadline (or earlier) while the queue is not empty. */
  timer: Timer | undefined = undefined;
  /** When `timer` fires (monotonic ms, as `_expiresAt`); Infinity when unarmed. */
  armedFor = Infinity;
  /** The cause shared by every request of this queue that times out, made on the first. */
  #cause: RequestTimeoutError | undefined;

  constructor(
    readonly ms: number,
    readonly source: QueueSource,
  ) {}

  cause(): RequestTimeoutError {
    return (this.#cause ??= new RequestTimeoutError(this.ms, this.source));
  }

  add(ctx: RequestCtx): void {
    // The turn's time, as Node's own timers count (see request-clock.ts).
    const dl = requestTime() + this.ms;
    // A parent's sooner deadline stays: the request inherits it, and the parent's own timer ends both.
    if (ctx._deadline !== undefined && ctx._deadline <= dl) return;
    ctx._deadline = dl;
    if (this.ms <= 0) {
      ctx._cancel(DeadlineExceeded, this.cause());
      return;
    }
    const expiresAt = requestMonotonic() + this.ms;
    ctx._expiresAt = expiresAt;
    ctx._queue = this;
    const t = this.tail;
    ctx._sooner = t;
    if (t === null) this.head = ctx;
    else t._later = ctx;
    this.tail = ctx;
    if (this.armedFor === Infinity) this.arm(expiresAt);
  }

  remove(ctx: RequestCtx): void {
    const s = ctx._sooner;
    const l = ctx._later;
    if (s === null) this.head = l;
    else s._later = l;
    if (l === null) this.tail = s;
    else l._sooner = s;
    ctx._sooner = ctx._later = null;
    ctx._queue = null;
    // A queue of the timeout option keeps its timer when it empties: the
    // next request would arm it again at once, and an unref'd timer that
    // fires on an empty queue costs one call every `ms`. A queue of a
    // header's budget goes, timer and all (callers pick those budgets).
    if (this.head === null && this.source !== "timeout") {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.armedFor = Infinity;
      queues[this.source].delete(this.ms);
    }
  }

  arm(at: number): void {
    this.armedFor = at;
    const t = setTimeout(
      expireHead,
      Math.min(Math.max(at - performance.now(), 1), MAX_TIMER_MS),
      this,
    );
    (t as { unref?: () => void }).unref?.();
    this.timer = t;
  }
}

/** expireHead ends every request whose deadline has passed, then waits for the next. */
function expireHead(q: DeadlineQueue): void {
  q.timer = undefined;
  q.armedFor = Infinity;
  const now = performance.now();
  let c = q.head;
  while (c !== null && c._expiresAt <= now) {
    // _cancel releases c, which unlinks it from the queue.
    c._cancel(DeadlineExceeded, q.cause());
    c = q.head;
  }
  if (c !== null) q.arm(c._expiresAt);
}

/** Where a queue's budget comes from: every source of a RequestTimeoutError but Node's own requestTimeout, which ends a request without a queue. */
type QueueSource = Exclude<RequestTimeoutError["source"], "requestTimeout">;

/**
 * The queues: one per budget of the `timeout` option (a server has one),
 * kept for the life of the process; one per budget read from a deadline
 * header, made only for a request it will hold and dropped when it empties
 * (a caller picks the budget, so those must not accumulate).
 */
const queues: Record<QueueSource, Map<number, DeadlineQueue>> = {
  timeout: new Map(),
  "connect-timeout-ms": new Map(),
  "grpc-timeout": new Map(),
};

function queueFor(ms: number, source: QueueSource): DeadlineQueue {
  const map = queues[source];
  let q = map.get(ms);
  if (q === undefined) map.set(ms, (q = new DeadlineQueue(ms, source)));
  return q;
}

/**
 * Fetch API Requests are host objects in some runtimes: their contexts go in
 * a WeakMap, which holds each only as long as its request lives.
 */
// eslint-disable-next-line taproot/no-stored-context -- the per-request cache requestContext() reads
export const fetchContexts = new WeakMap<Request, Context>();
