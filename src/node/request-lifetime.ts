/**
 * A request's lifetime on `node:http`, in one place: binding a context to a
 * request, ending it when the client leaves (the response or the HTTP/2
 * stream closing early, or the socket closing under requests pipelined
 * behind the one being answered), at the deadline (the request context's
 * own queue, src/fetch/request-context.ts), at shutdown (through its parent,
 * the server's context), and releasing it once the response is finished and,
 * under serve(), the handler has returned. requestContext(), serve() and
 * contextMiddleware() all call bindRequest(); none of them ends a request
 * context another way.
 */
import { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Socket } from "node:net";
import { DeadlineExceeded, type Context } from "../index.js";
import { RequestTimeoutError } from "../fetch/errors.js";
import { CONNECT_TIMEOUT, GRPC_TIMEOUT } from "../fetch/deadline-header.js";
import {
  fetchContexts,
  parentDeadline,
  RequestCtx,
  startRequestContext,
  type RequestPolicy,
} from "../fetch/request-context.js";
import { joinTurnEnd, requestTime } from "../fetch/request-clock.js";

/**
 * An incoming request of `node:http`, `node:https` or the `node:http2` compatibility API.
 *
 * @example
 * ```ts
 * function route(req: IncomingRequest): string {
 *   return `${req.method} ${req.url}`;
 * }
 * ```
 */
export type IncomingRequest = IncomingMessage | Http2ServerRequest;
/**
 * The response that goes with an {@link IncomingRequest}.
 *
 * @example
 * ```ts
 * function reply(res: OutgoingResponse, body: string): void {
 *   res.end(body);
 * }
 * ```
 */
export type OutgoingResponse = ServerResponse | Http2ServerResponse;

/**
 * Where a request's lifetime, and so its context, lives: a symbol-keyed
 * property of node's request object, which dies with the request (a WeakMap
 * costs far more per request: every entry is an ephemeron the GC must
 * trace). The HTTP/1 response's close listener finds it through `res.req`,
 * so the response carries nothing of ours; an HTTP/2 stream, which has no
 * such link, carries it too.
 */
const kLifetime = Symbol("taproot.lifetime");
/** Where a socket keeps the list of its requests whose response has not closed yet. */
const kRequests = Symbol("taproot.socketRequests");

type WithLifetime<T> = T & { [kLifetime]?: RequestLifetime };
type ResponseOf = ServerResponse & { req: WithLifetime<IncomingMessage> };
type TrackedSocket = Socket & { [kRequests]?: SocketRequests };

/** boundContext returns the context already bound to a node request, if any. */
export function boundContext(req: IncomingRequest): RequestLifetime | undefined {
  return (req as WithLifetime<IncomingRequest>)[kLifetime];
}

/** contextOf returns the context already bound to a request, if any. */
export function contextOf(req: object): Context | undefined {
  const own = boundContext(req as IncomingRequest);
  if (own !== undefined) return own;
  // Only a Fetch API Request (or one shaped like it) can be in the WeakMap:
  // node's own requests skip the lookup.
  return req instanceof IncomingMessage ? undefined : fetchContexts.get(req as Request);
}

/**
 * isHttp2 tells an HTTP/2 compatibility request, whose stream is its own,
 * from an HTTP/1 one, whose socket keep-alive hands to the next request.
 */
export function isHttp2(req: IncomingRequest): req is Http2ServerRequest {
  return req.httpVersionMajor >= 2 && "stream" in req;
}

/**
 * RequestSet is the list of requests a server is handling, oldest first (an
 * intrusive list: no hashing, no allocation beyond the lifetime itself).
 * `released` runs when a request leaves it.
 */
export class RequestSet {
  // eslint-disable-next-line taproot/no-stored-context -- a request leaves the list when it is released
  head: RequestLifetime | null = null;
  // eslint-disable-next-line taproot/no-stored-context -- a request leaves the list when it is released
  tail: RequestLifetime | null = null;
  count = 0;

  constructor(readonly released: (ctx: RequestLifetime) => void) {}

  add(ctx: RequestLifetime): void {
    ctx.set = this;
    ctx.older = this.tail;
    if (this.tail === null) this.head = ctx;
    else this.tail.newer = ctx;
    this.tail = ctx;
    this.count++;
  }

  /**
   * closeConnectionsAfterNewest marks, at the start of a drain, the newest
   * unsent HTTP/1 response of each connection in the set `connection: close`,
   * and only that one: Node ends a connection once a response that says close
   * is sent, and would drop the responses pipelined behind it.
   */
  closeConnectionsAfterNewest(): void {
    const newest = new Map<Socket | null, ServerResponse>();
    for (let l = this.head; l !== null; l = l.newer) {
      const req = l.req;
      if (req !== null && req.httpVersionMajor === 1 && l.res !== undefined) {
        newest.set(req.socket as Socket | null, l.res as ServerResponse);
      }
    }
    for (const res of newest.values()) if (!res.headersSent) res.setHeader("connection", "close");
  }

  remove(ctx: RequestLifetime): void {
    if (ctx.older === null) this.head = ctx.newer;
    else ctx.older.newer = ctx.newer;
    if (ctx.newer === null) this.tail = ctx.older;
    else ctx.newer.older = ctx.older;
    ctx.older = ctx.newer = null;
    ctx.set = null;
    this.count--;
  }
}

/**
 * RequestLifetime is one request of `node:http` from the moment its context
 * is bound to its release, and that context itself: a request costs one
 * object, not a context and a record about it. Its fields are set once at
 * binding unless their comment says otherwise; `req` and `res` are dropped at
 * the release, so a context kept longer (the parent of a withoutCancel()
 * job) does not keep the request and the response alive.
 *
 * It is a RequestCtx, and so a CancelCtx, through its prototype (set below
 * the class), but its constructor is flat: it sets RequestCtx's fields
 * itself, in RequestCtx's order, instead of calling RequestCtx's, which
 * calls CancelCtx's. V8 does not inline that chain where a request is bound,
 * and under load the three calls cost more than all the fields together
 * (BENCHMARKS.md, "the request layer"). test/node/request-lifetime.test.ts
 * checks that a lifetime has every field a RequestCtx has, in the same order.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type -- the prototype is RequestCtx's (see above); the constructor sets its fields
export interface RequestLifetime extends RequestCtx {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- as above
export class RequestLifetime {
  /** The request and its response; set at binding, cleared by release(). */
  req: IncomingRequest | null;
  res: OutgoingResponse | undefined;
  /** The method and target as the client sent them: Express's mounted routers rewrite req.url later. */
  readonly method: string;
  readonly url: string;
  /** Set when the response (or HTTP/2 stream) closed, finished or not. */
  responseClosed: boolean;
  /** Set when the handler returned or its promise settled; true from the start when nothing waits for one. */
  handlerDone: boolean;
  /** The server's list this request is in until released (serve() only), and its neighbours there; null otherwise. */
  set: RequestSet | null;
  older: RequestLifetime | null;
  newer: RequestLifetime | null;
  /** The socket's list of pipelined requests it is in (HTTP/1), until its response closes, and its neighbours there. */
  socketList: SocketRequests | null;
  earlierOnSocket: RequestLifetime | null;
  laterOnSocket: RequestLifetime | null;
  /** Epoch ms of arrival as of its turn of the event loop, for inflight() (serve() only; 0 otherwise). */
  startedAt: number;
  /**
   * A framework's own request object: Fastify's, for its debug page; Hono's
   * context, for the error its handler threw. Set by the integration after
   * binding, cleared by release().
   */
  frameworkRequest: object | null;
  /**
   * Reads the error a framework caught from the handler off
   * `frameworkRequest` (Hono's `c.error`), once, at the release: a framework
   * that answers a thrown error itself tells no one else. Set with
   * `frameworkRequest` by an integration whose framework has no hook for
   * failures; null otherwise (Fastify's plugin has its onError hook).
   */
  caughtError: ((frameworkRequest: object) => unknown) | null;

  constructor(
    policy: RequestPolicy,
    req: IncomingRequest,
    res: OutgoingResponse | undefined,
    waitForHandler: boolean,
  ) {
    // CancelCtx's fields (see there), then RequestCtx's.
    this._error = null;
    this._cause = null;
    this._head = null;
    this._next = null;
    this._prev = null;
    this._owner = null;
    this._done = null;
    this._controller = null;
    this._count = 0;
    this._parent = policy.parent;
    this._deadline = parentDeadline(policy);
    this._values = policy.facts.values;
    this._queue = null;
    this._later = null;
    this._sooner = null;
    this._expiresAt = 0;
    // Its own.
    this.req = req;
    this.res = res;
    this.method = req.method ?? "GET";
    this.url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
    this.responseClosed = false;
    this.handlerDone = !waitForHandler;
    this.set = null;
    this.older = null;
    this.newer = null;
    this.socketList = null;
    this.earlierOnSocket = null;
    this.laterOnSocket = null;
    this.startedAt = 0;
    this.frameworkRequest = null;
    this.caughtError = null;
  }

  /**
   * handlerReturned marks the handler done: the context is released now if
   * the response has closed, else when it does.
   */
  handlerReturned(): void {
    this.handlerDone = true;
    if (this.responseClosed) this.release();
  }

  /**
   * release ends the context, as Go's ends r.Context() when ServeHTTP
   * returns (work the handler started and did not wait for stops here), and
   * takes the request out of its server's list.
   */
  release(): void {
    const framework = this.frameworkRequest;
    if (framework !== null && this.caughtError !== null) {
      const error = this.caughtError(framework);
      if (error !== undefined) this.handlerFailed(error);
    }
    this.end();
    const s = this.set;
    if (s !== null) {
      s.remove(this);
      s.released(this);
    }
    this.req = null;
    this.res = undefined;
    this.frameworkRequest = null;
  }
}
Object.setPrototypeOf(RequestLifetime.prototype, RequestCtx.prototype);

/**
 * bindRequest creates and caches the context of one request, and makes sure
 * it ends: returns the lifetime. `set`, when given, holds the request until
 * its release, which then also waits for `handlerReturned()`. `watch` says
 * when an HTTP/1 response starts being watched (see Watch).
 */
export function bindRequest(
  req: IncomingRequest,
  res: OutgoingResponse | undefined,
  policy: RequestPolicy,
  set: RequestSet | null,
  watch: Watch = "turn",
): RequestLifetime {
  let connect: string | string[] | undefined;
  let grpc: string | string[] | undefined;
  if (policy.headers) {
    // Read rawHeaders, never req.headers: Node builds that object lazily, on
    // first access, and building it for every request would cost more than
    // all the rest of the binding.
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.length === CONNECT_TIMEOUT.length && name.toLowerCase() === CONNECT_TIMEOUT) {
        connect = append(connect, raw[i + 1] as string);
      } else if (name.length === GRPC_TIMEOUT.length && name.toLowerCase() === GRPC_TIMEOUT) {
        grpc = append(grpc, raw[i + 1] as string);
      }
    }
  }
  const ctx = new RequestLifetime(policy, req, res, set !== null);
  startRequestContext(ctx, policy, connect, grpc);
  (req as WithLifetime<IncomingRequest>)[kLifetime] = ctx;
  if (set !== null) {
    ctx.startedAt = requestTime();
    set.add(ctx);
  }

  if (isHttp2(req)) {
    const stream = req.stream as WithLifetime<Http2ServerRequest["stream"]>;
    stream[kLifetime] = ctx;
    if (stream.closed || stream.destroyed) onStreamClose.call(stream);
    else stream.on("close", onStreamClose);
    return ctx;
  }
  if (watch === "turn") watchAtTurnEnd(ctx);
  else {
    const r = res as ResponseOf;
    if (r.closed || r.destroyed) responseClosed(ctx, !r.writableFinished);
  }
  return ctx;
}

/**
 * When bindRequest starts watching an HTTP/1 response for its close.
 * Nothing can close a response while the code that bound it runs on (its
 * 'close' comes in a later tick at the soonest), and most handlers finish
 * their response at once, or within the same turn of the event loop:
 * watched after that, such a response needs no listener at all (see
 * watchReturned).
 * - `turn`: once this turn of the event loop is over (requestContext(),
 *   called by handlers taproot does not run, and the integrations), when
 *   the request clock's immediate ends this turn anyway (a deadline or an
 *   arrival time was read); otherwise at once. The requests bound in a turn
 *   wait in one list, watched by that immediate: a push per request, where a
 *   listener costs its addition and its call. A response that closed in
 *   between is seen closed then (`closed`, `destroyed`), and its client's
 *   leaving is read off `writableFinished` as the listener would have.
 *   Two other ways to wait for the turn's end cost more than the listener
 *   they save, and are not used: a microtask per request (measured), and an
 *   immediate of the watch's own per turn (see joinTurnEnd).
 * - `caller`: the caller runs the handler and calls watchReturned() once it
 *   has returned, or watchAtTurnEnd() when it returned a promise (serve()).
 */
export type Watch = "turn" | "caller";

/**
 * The HTTP/1 requests bound in this turn of the event loop whose response is
 * watched once the turn is over (Watch `turn`), from `pendingStart` on: the
 * entries before it were released earlier in the turn (releaseFinished) and
 * hold undefined. Emptied by watchPending.
 */
// eslint-disable-next-line taproot/no-stored-context -- held until the turn's immediate, which empties it
let pendingWatch: (RequestLifetime | undefined)[] = [];
/** The index of pendingWatch's first entry not yet released; advanced by releaseFinished, reset by watchPending. */
let pendingStart = 0;

/**
 * watchAtTurnEnd watches an HTTP/1 response once this turn of the event loop
 * is over (Watch `turn`): serve() calls it for a handler that returned a
 * promise, which most often has answered by then.
 */
export function watchAtTurnEnd(ctx: RequestLifetime): void {
  if (pendingWatch.length === 0 && !joinTurnEnd(watchPending)) {
    watchResponse(ctx);
    return;
  }
  releaseFinished();
  pendingWatch.push(ctx);
}

/**
 * releaseFinished releases, oldest first, the requests bound earlier in this
 * turn whose responses have finished since, and stops at the first that has
 * not. A busy server answers most requests within the turn that read them,
 * each before the next is bound; held until the turn's end, a finished
 * request kept its request, response and framework objects alive through
 * every garbage collection in between: ten times the bytes survived each
 * scavenge of a Fastify server, and V8 doubled its young generation for them
 * (BENCHMARKS.md, "finished requests held to the turn's end").
 */
function releaseFinished(): void {
  while (pendingStart < pendingWatch.length) {
    const older = pendingWatch[pendingStart] as RequestLifetime;
    // res is set until the response closes; watchReturned skips a closed one and releases a finished one.
    if (!older.responseClosed && !(older.res as ResponseOf).writableFinished) return;
    watchQuietly(older);
    pendingWatch[pendingStart++] = undefined;
  }
}

/**
 * watchPending watches the responses of the requests bound in the turn just
 * over that releaseFinished did not release.
 */
function watchPending(): void {
  const list = pendingWatch;
  const start = pendingStart;
  pendingWatch = [];
  pendingStart = 0;
  for (let i = start; i < list.length; i++) watchQuietly(list[i] as RequestLifetime);
}

/**
 * watchQuietly is watchReturned() for a request of the turn's list. One whose
 * end throws (a user froze the context) does not keep the others from being
 * watched: its error is thrown again in a microtask, as uncaught as it would
 * have been from a close listener.
 */
function watchQuietly(ctx: RequestLifetime): void {
  try {
    // A request released meanwhile has its response closed: watchReturned skips it.
    watchReturned(ctx);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

/**
 * watchReturned is watchResponse() for a handler that has returned, or a
 * request whose turn of the event loop is over: a response finished and
 * handed to the socket whole (`writableFinished`) can no longer lose its
 * client, counts as closed now, and needs no listener.
 */
export function watchReturned(ctx: RequestLifetime): void {
  if (ctx.responseClosed) return;
  if ((ctx.res as ResponseOf).writableFinished) responseClosed(ctx, false);
  else watchResponse(ctx);
}

/**
 * watchResponse makes sure an HTTP/1 request's context ends when its
 * response closes, also when the client leaves while the request waits
 * behind others pipelined on the same connection.
 */
export function watchResponse(ctx: RequestLifetime): void {
  if (ctx.responseClosed) return;
  const r = ctx.res as ResponseOf;
  if (r.closed || r.destroyed) {
    responseClosed(ctx, !r.writableFinished);
    return;
  }
  r.on("close", onResponseClose);
  // A response attached to its socket closes with it (Node's own listener
  // on the socket emits its 'close'). One pipelined behind another is not
  // attached yet, and would never close if the client left: the socket's
  // 'close' ends those. One listener per connection, not per request, and
  // no work at all for the usual request that is answered at once.
  if (r.socket !== null) return;
  const socket = (ctx.req as IncomingMessage).socket as TrackedSocket | null;
  if (socket !== null) {
    if (socket.destroyed) {
      responseClosed(ctx, true);
      return;
    }
    let list = socket[kRequests];
    if (list === undefined) {
      list = socket[kRequests] = new SocketRequests();
      socket.once("close", onSocketClose);
    }
    list.add(ctx);
  }
}

/** append collects the values of a repeated header. */
function append(prev: string | string[] | undefined, v: string): string | string[] {
  if (prev === undefined) return v;
  return Array.isArray(prev) ? [...prev, v] : [prev, v];
}

/**
 * SocketRequests are the requests of one HTTP/1 connection whose response has
 * not closed yet: the one being answered and any pipelined behind it.
 */
class SocketRequests {
  // eslint-disable-next-line taproot/no-stored-context -- a request leaves the list when it is released
  first: RequestLifetime | null = null;
  // eslint-disable-next-line taproot/no-stored-context -- a request leaves the list when it is released
  last: RequestLifetime | null = null;

  add(ctx: RequestLifetime): void {
    ctx.socketList = this;
    ctx.earlierOnSocket = this.last;
    if (this.last === null) this.first = ctx;
    else this.last.laterOnSocket = ctx;
    this.last = ctx;
  }

  remove(ctx: RequestLifetime): void {
    const earlier = ctx.earlierOnSocket;
    const later = ctx.laterOnSocket;
    if (earlier === null) this.first = later;
    else earlier.laterOnSocket = later;
    if (later === null) this.last = earlier;
    else later.earlierOnSocket = earlier;
    ctx.earlierOnSocket = ctx.laterOnSocket = null;
    ctx.socketList = null;
  }
}

/**
 * A response closing before it finished is a real disconnect; the request's
 * own 'close' is not (it fires once the body is read, nodejs/node#38924,
 * nodejs/node#40775).
 */
function onResponseClose(this: ResponseOf): void {
  const ctx = this.req[kLifetime];
  if (ctx !== undefined) responseClosed(ctx, !this.writableFinished);
}

/** The connection closed: every request still open on it lost its client. */
function onSocketClose(this: TrackedSocket): void {
  const list = this[kRequests];
  if (list === undefined) return;
  this[kRequests] = undefined;
  for (let ctx = list.first; ctx !== null; ctx = list.first) {
    responseClosed(ctx, !(ctx.res as ServerResponse).writableFinished);
  }
}

/**
 * On HTTP/2 the stream is per request. A stream the client reset, or one
 * that closed with its session before our side ended it (Node closes those
 * itself with NO_ERROR), is the client leaving: `aborted` says both.
 */
function onStreamClose(this: WithLifetime<Http2ServerRequest["stream"]>): void {
  const ctx = this[kLifetime];
  if (ctx !== undefined) {
    responseClosed(ctx, this.aborted || !this.writableFinished || (this.rstCode ?? 0) !== 0);
  }
}

/** responseClosed ends a request's response, once: a disconnect cancels its context, then it is released if its handler is done. */
function responseClosed(ctx: RequestLifetime, disconnected: boolean): void {
  if (ctx.responseClosed) return;
  ctx.responseClosed = true;
  ctx.socketList?.remove(ctx);
  if (disconnected) closedUnfinished(ctx);
  if (ctx.handlerDone) ctx.release();
}

/** A node:http server's socket as Node's own requestTimeout leaves it. */
type ServerSocket = Socket & { server?: { requestTimeout?: unknown } };

/**
 * closedUnfinished cancels a request whose response closed before it was
 * finished. Most often the client left. But Node's own server also closes
 * a request whose body has not all arrived within `server.requestTimeout`
 * (default 300 s): it answers 408 and destroys the socket with
 * ERR_HTTP_REQUEST_TIMEOUT. That is the server's deadline, not the client
 * leaving: `DeadlineExceeded`, with a RequestTimeoutError of source
 * `requestTimeout` as cause.
 */
function closedUnfinished(ctx: RequestLifetime): void {
  const req = ctx.req;
  if (req instanceof IncomingMessage) {
    const socket = req.socket as ServerSocket | null;
    const error = socket?.errored as { code?: unknown } | null | undefined;
    if (error?.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      const ms = socket?.server?.requestTimeout;
      ctx._cancel(
        DeadlineExceeded,
        new RequestTimeoutError(typeof ms === "number" ? ms : NaN, "requestTimeout"),
      );
      return;
    }
  }
  ctx.clientLeft(ctx.method, ctx.url);
}

/** isRequest tells a node:http or node:http2 request from anything else. */
export function isIncomingRequest(req: unknown): req is IncomingRequest {
  return req instanceof IncomingMessage || isHttp2Request(req);
}

/** isResponse tells a node:http or node:http2 response from anything else. */
export function isOutgoingResponse(res: unknown): res is OutgoingResponse {
  return res instanceof ServerResponse || isHttp2Response(res);
}

// node:http2's compatibility classes are not exported as values; they are
// recognized by their constructor's name and their stream.
function isHttp2Request(req: unknown): boolean {
  const r = req as { constructor?: { name?: string }; stream?: unknown } | null;
  return typeof r === "object" && r?.constructor?.name === "Http2ServerRequest" && !!r.stream;
}

function isHttp2Response(res: unknown): boolean {
  const r = res as { constructor?: { name?: string }; stream?: unknown } | null;
  return typeof r === "object" && r?.constructor?.name === "Http2ServerResponse" && !!r.stream;
}
