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
import { checkContext, checkMs, describe } from "./describe.js";
import { ClientDisconnectedError, RequestTimeoutError } from "./errors.js";

/** An incoming request of `node:http`, `node:https` or the `node:http2` compatibility API. */
export type IncomingRequest = IncomingMessage | Http2ServerRequest;
/** The response that goes with an {@link IncomingRequest}. */
export type OutgoingResponse = ServerResponse | Http2ServerResponse;

/**
 * RequestContextOptions shape the context {@link requestContext} creates. They
 * are read once, when a request's context is created; later calls return the
 * cached context whatever options they pass.
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
  headers: boolean;
  maxHeader: number;
}

/**
 * contexts maps a request (node's req, or a Fetch Request) to its context.
 * Weak, so nothing outlives the request; nothing is stored on the request or
 * its socket, which keep-alive reuses for the next request.
 */
export const contexts = new WeakMap<object, Context>();

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
 * are found without it.
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
  const known = contexts.get(req as object);
  if (known !== undefined) return known;
  const fn = "requestContext(req, res)";
  if (req === null || typeof req !== "object" || !("headers" in req)) {
    throw new TypeError(
      `${fn}: req must be an incoming request (http.IncomingMessage or http2.Http2ServerRequest), got ${describe(req)}`,
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
      `${fn}: res must be the request's response (http.ServerResponse), got ${describe(res)}`,
    );
  }
  const incoming = req as IncomingRequest;
  const response = res ?? (incoming as { res?: OutgoingResponse }).res;
  if (response === undefined && !isHttp2(incoming)) {
    throw new TypeError(
      `${fn}: res is missing and this request has no context yet; pass the response on the first call (requestContext(req, res)), or serve the handler with serve() or contextMiddleware()`,
    );
  }
  return bindRequest(incoming, response, policy, undefined)[0];
}

/** resolvePolicy checks the options once, naming `fn` in errors. */
export function resolvePolicy(
  fn: string,
  options: RequestContextOptions | undefined,
): RequestPolicy {
  const o = options ?? {};
  if (o.context !== undefined) checkContext(fn, "options.context", o.context);
  return {
    parent: o.context ?? background(),
    timeout: o.timeout === undefined ? Infinity : checkMs(fn, "options.timeout", o.timeout, false),
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
 * bindRequest creates and caches the context of one request. `onClose` runs
 * when the response closes, with whether the client left first; without it
 * the context is released there. The listener goes on the response (or the
 * HTTP/2 stream), which lives exactly as long as the request, never on the
 * socket that keep-alive hands to the next request.
 */
export function bindRequest(
  req: IncomingRequest,
  res: OutgoingResponse | undefined,
  policy: RequestPolicy,
  onClose: ((disconnected: boolean) => void) | undefined,
): [Context, CancelCauseFunc] {
  const [outer, cancel] = withCancelCause(policy.parent);
  let ctx = outer;
  let budget = policy.timeout;
  let source: RequestTimeoutError["source"] = "timeout";
  if (policy.headers) {
    const h = req.headers;
    const connect = h[CONNECT_TIMEOUT];
    const grpc = h[GRPC_TIMEOUT];
    if (connect !== undefined || grpc !== undefined) {
      const b = headerBudget(connect, grpc);
      if (b !== undefined && Math.min(b.ms, policy.maxHeader) < budget) {
        budget = Math.min(b.ms, policy.maxHeader);
        source = b.source;
      }
    }
  }
  if (budget !== Infinity) {
    // Its own cancel is not kept: canceling `outer` ends it and its timer.
    ctx = withDeadlineCause(outer, Date.now() + budget, timeoutError(budget, source))[0];
  }
  contexts.set(req, ctx);

  const closed = (disconnected: boolean): void => {
    if (disconnected) cancel(new ClientDisconnectedError(req.method ?? "GET", req.url ?? "/"));
    if (onClose === undefined) cancel();
    else onClose(disconnected);
  };
  if (isHttp2(req)) {
    // On HTTP/2 the stream is per request. A reset (rstCode other than
    // NO_ERROR) or a close before our side ended is the client leaving.
    const stream = req.stream;
    const onStreamClose = (): void => closed(!stream.writableEnded || (stream.rstCode ?? 0) !== 0);
    if (stream.closed || stream.destroyed) onStreamClose();
    else stream.once("close", onStreamClose);
  } else {
    const r = res as ServerResponse;
    // A response closing before it finished is a real disconnect; the
    // request's 'close' is not (nodejs/node#38924, nodejs/node#40775).
    const onResClose = (): void => closed(!r.writableFinished);
    if (r.closed || r.destroyed) onResClose();
    else r.once("close", onResClose);
  }
  return [ctx, cancel];
}

/**
 * timeoutError builds the cause of a request deadline without capturing a
 * stack: it is created for every request that has a budget, and a stack
 * pointing into this module would say nothing.
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
