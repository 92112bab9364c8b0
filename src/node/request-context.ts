import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import {
  background,
  withCancelCause,
  withDeadlineCause,
  type CancelCauseFunc,
  type Context,
} from "../index.js";
import { headerBudget, CONNECT_TIMEOUT, GRPC_TIMEOUT } from "./deadline-header.js";
import { checkContext, checkMs, describeValue } from "../validate.js";
import { ClientDisconnectedError, RequestTimeoutError } from "./errors.js";

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
 * RequestContextOptions shape the context {@link requestContext} creates. They
 * are read once, when a request's context is created; later calls return the
 * cached context whatever options they pass.
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

/** RequestPolicy is a checked RequestContextOptions, resolved once per server. */
export interface RequestPolicy {
  parent: Context;
  timeout: number;
  /** The cause of every deadline set by `timeout`: one shared Error, not one per request. */
  timeoutCause: RequestTimeoutError | undefined;
  headers: boolean;
  maxHeader: number;
}

/**
 * Where a request's context lives: a symbol-keyed property of node's request
 * object, which dies with the request (a WeakMap costs far more per request:
 * every entry is an ephemeron the GC must trace). Nothing is stored on the
 * socket, which keep-alive hands to the next request.
 */
const kContext = Symbol("taproot.requestContext");
/** Where the response (or HTTP/2 stream) keeps its binding, for the shared close listener. */
const kBinding = Symbol("taproot.binding");

/**
 * Fetch API Requests are host objects in some runtimes: their contexts go in
 * a WeakMap, which holds each only as long as its request lives.
 */
// eslint-disable-next-line taproot/no-stored-context -- the per-request cache requestContext() reads
export const fetchContexts = new WeakMap<Request, Context>();

/** contextOf returns the context already bound to a request, if any. */
export function contextOf(req: object): Context | undefined {
  return (req as { [kContext]?: Context })[kContext] ?? fetchContexts.get(req as Request);
}

/**
 * requestContext returns the context of an incoming request: the same one on
 * every call for a given request, created on the first (by {@link serve} or
 * {@link contextMiddleware} before the handler runs, or by this call). It is
 * the counterpart of Go's `r.Context()`.
 *
 * The context is canceled
 * - when the client disconnects before the response is finished (cause
 *   {@link ClientDisconnectedError});
 * - when its parent is canceled: with {@link serve}, when the server's grace
 *   period runs out (cause {@link ShutdownError});
 * - at the request's deadline, the earliest of `options.timeout` and the
 *   caller's deadline headers (err `DeadlineExceeded`, cause
 *   {@link RequestTimeoutError});
 * - once the response is finished, like Go's context when `ServeHTTP` returns,
 *   which releases its timer and its place in the parent.
 *
 * Pass `res` on the first call with `node:http`: Node gives no public way from
 * a request to its response, and the response's `close` is the only reliable
 * disconnect signal (the request's own `close` fires as soon as the body has
 * been read, nodejs/node#38924). Express's `req.res` and HTTP/2's `req.stream`
 * are found without it. A Fetch API `Request` handled by {@link fetchHandler}
 * also has its context here.
 *
 * @example
 * ```ts
 * http.createServer(async (req, res) => {
 *   const ctx = requestContext(req, res, { timeout: 5_000 });
 *   const rows = await db.query(ctx, "select 1");
 *   res.end(JSON.stringify(rows));
 * });
 * ```
 */
export function requestContext(
  req: IncomingRequest | Request,
  res?: OutgoingResponse,
  options?: RequestContextOptions,
): Context {
  if (req !== null && typeof req === "object") {
    const known = contextOf(req);
    if (known !== undefined) return known;
  }
  const fn = "requestContext(req, res)";
  if (req === null || typeof req !== "object" || !("headers" in req)) {
    throw new TypeError(
      `${fn}: req must be an incoming request (http.IncomingMessage or http2.Http2ServerRequest), got ${describeValue(req)}`,
    );
  }
  if (typeof Request === "function" && req instanceof Request) {
    throw new TypeError(
      `${fn}: req is a Fetch API Request that no fetchHandler() wrapped; wrap the handler with fetchHandler(handler) so its context exists`,
    );
  }
  const policy = resolvePolicy(fn, options);
  if (res !== undefined && (res === null || typeof res !== "object" || !("writeHead" in res))) {
    throw new TypeError(
      `${fn}: res must be the request's response (http.ServerResponse), got ${describeValue(res)}`,
    );
  }
  const incoming = req as IncomingRequest;
  const response = res ?? (incoming as { res?: OutgoingResponse }).res;
  if (response === undefined && !isHttp2(incoming)) {
    throw new TypeError(
      `${fn}: res is missing and this request has no context yet; pass the response on the first call (requestContext(req, res)), or serve the handler with serve() or contextMiddleware()`,
    );
  }
  const binding = new Binding(incoming);
  bindRequest(binding, response, policy);
  return binding.ctx;
}

/** resolvePolicy checks the options once, naming `fn` in errors. */
export function resolvePolicy(
  fn: string,
  options: RequestContextOptions | undefined,
): RequestPolicy {
  const o = options ?? {};
  if (o.context !== undefined) checkContext(fn, "options.context", o.context);
  const timeout =
    o.timeout === undefined ? Infinity : checkMs(fn, "options.timeout", o.timeout, false);
  return {
    parent: o.context ?? background(),
    timeout,
    timeoutCause: timeout === Infinity ? undefined : new RequestTimeoutError(timeout, "timeout"),
    headers: o.deadlineHeaders !== false,
    maxHeader:
      o.maxHeaderTimeout === undefined
        ? Infinity
        : checkMs(fn, "options.maxHeaderTimeout", o.maxHeaderTimeout, false),
  };
}

function isHttp2(req: IncomingRequest): req is Http2ServerRequest {
  return req.httpVersionMajor >= 2 && "stream" in req;
}

/**
 * Binding ties one request to its context until the response closes.
 * `closed` runs once, with whether the client left first; by default it ends
 * the context, releasing its timer and its place in the parent. serve()
 * extends it to also wait for the handler.
 */
export class Binding {
  // eslint-disable-next-line taproot/no-stored-context -- a binding lives exactly as long as its request
  ctx!: Context;
  cancel!: CancelCauseFunc;

  constructor(readonly req: IncomingRequest) {}

  closed(_disconnected: boolean): void {
    this.cancel();
  }
}

/**
 * bindRequest creates and caches the context of one request. The close
 * listener goes on the response (or the HTTP/2 stream), which lives exactly
 * as long as the request; it is one shared function that finds the binding
 * through `this`, so a request costs no closure.
 */
export function bindRequest(
  b: Binding,
  res: OutgoingResponse | undefined,
  policy: RequestPolicy,
): void {
  const req = b.req;
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
  const [ctx, cancel] = newRequestContext(policy, connect, grpc);
  b.ctx = ctx;
  b.cancel = cancel;
  (req as { [kContext]?: Context })[kContext] = ctx;

  if (isHttp2(req)) {
    const stream = req.stream as Http2ServerRequest["stream"] & { [kBinding]?: Binding };
    stream[kBinding] = b;
    if (stream.closed || stream.destroyed) onStreamClose.call(stream);
    else stream.on("close", onStreamClose);
  } else {
    const r = res as ServerResponse & { [kBinding]?: Binding };
    r[kBinding] = b;
    if (r.closed || r.destroyed) onResponseClose.call(r);
    else r.on("close", onResponseClose);
  }
}

/** append collects the values of a repeated header. */
function append(prev: string | string[] | undefined, v: string): string | string[] {
  if (prev === undefined) return v;
  return Array.isArray(prev) ? [...prev, v] : [prev, v];
}

/**
 * newRequestContext derives a request's context from the policy: a
 * cancelable child of the parent, under a deadline when the `timeout` option
 * or the caller's deadline headers (already read, when the policy honours
 * them) set one, the earliest winning. Canceling the returned cancel ends
 * both, and the deadline's timer with them.
 */
export function newRequestContext(
  policy: RequestPolicy,
  connect: string | string[] | undefined,
  grpc: string | string[] | undefined,
): [Context, CancelCauseFunc] {
  const [outer, cancel] = withCancelCause(policy.parent);
  let budget = policy.timeout;
  let source: RequestTimeoutError["source"] = "timeout";
  if (connect !== undefined || grpc !== undefined) {
    const hb = headerBudget(connect, grpc);
    if (hb !== undefined && Math.min(hb.ms, policy.maxHeader) < budget) {
      budget = Math.min(hb.ms, policy.maxHeader);
      source = hb.source;
    }
  }
  if (budget === Infinity) return [outer, cancel];
  const why =
    source === "timeout" && policy.timeoutCause !== undefined
      ? policy.timeoutCause
      : timeoutError(budget, source);
  // The deadline's own cancel is not needed: canceling `outer` ends it and its timer.
  // eslint-disable-next-line taproot/lost-cancel
  return [withDeadlineCause(outer, Date.now() + budget, why)[0], cancel];
}

/**
 * A response closing before it finished is a real disconnect; the request's
 * own 'close' is not (it fires once the body is read, nodejs/node#38924,
 * nodejs/node#40775).
 */
function onResponseClose(this: ServerResponse & { [kBinding]?: Binding }): void {
  const b = this[kBinding];
  if (b !== undefined) settleBinding(b, !this.writableFinished);
}

/**
 * On HTTP/2 the stream is per request. A reset (an rstCode other than
 * NO_ERROR) or a close before our side ended is the client leaving.
 */
function onStreamClose(this: Http2ServerRequest["stream"] & { [kBinding]?: Binding }): void {
  const b = this[kBinding];
  if (b !== undefined) settleBinding(b, !this.writableEnded || (this.rstCode ?? 0) !== 0);
}

function settleBinding(b: Binding, disconnected: boolean): void {
  if (disconnected) {
    b.cancel(new ClientDisconnectedError(b.req.method ?? "GET", b.req.url ?? "/"));
  }
  b.closed(disconnected);
}

/**
 * timeoutError builds the cause of a deadline set by a request's headers
 * without capturing a stack: one is created for every such request, and a
 * stack pointing into this module would say nothing.
 */
function timeoutError(ms: number, source: RequestTimeoutError["source"]): RequestTimeoutError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new RequestTimeoutError(ms, source);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
