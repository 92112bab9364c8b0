import { IncomingMessage, ServerResponse } from "node:http";
import { resolvePolicy, type RequestContextOptions } from "../fetch/request-context.js";
import type { Context } from "../index.js";
import { checkOptions, describeValue } from "../validate.js";
import {
  bindRequest,
  boundContext,
  contextOf,
  isHttp2,
  isIncomingRequest,
  isOutgoingResponse,
  type IncomingRequest,
  type OutgoingResponse,
} from "./request-lifetime.js";

export type { RequestContextOptions } from "../fetch/request-context.js";
export type { IncomingRequest, OutgoingResponse } from "./request-lifetime.js";

const FN = "requestContext(req, res)";

/**
 * requestContext returns the context of an incoming request: the same one on
 * every call for a given request, created on the first (by {@link serve} or
 * {@link contextMiddleware} before the handler runs, or by this call). It is
 * the counterpart of Go's `r.Context()`.
 *
 * The context is canceled
 * - when the client disconnects before the response is finished (cause
 *   {@link ClientDisconnectedError}), also for requests pipelined behind
 *   the one being answered;
 * - when its parent is canceled: with {@link serve}, when the server's grace
 *   period runs out (cause {@link ShutdownError});
 * - at the request's deadline, the earliest of `options.timeout` and the
 *   caller's deadline headers (err `DeadlineExceeded`, cause
 *   {@link RequestTimeoutError}); a caller that leaves within a hair of a
 *   deadline its own header set reads as that deadline, since it gave up at
 *   the same one;
 * - once the response is finished, like Go's context when `ServeHTTP` returns,
 *   which releases its place in the parent.
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
  // The usual call first: a node:http request with its response, bound
  // here or already (one type test each, nothing else to check).
  if (req instanceof IncomingMessage) {
    const known = boundContext(req);
    if (known !== undefined) return known;
    if (res instanceof ServerResponse)
      return bindRequest(req, res, resolvePolicy(FN, options), null);
  } else if (req !== null && typeof req === "object") {
    const known = contextOf(req);
    if (known !== undefined) return known;
  }
  if (!isIncomingRequest(req)) {
    if (typeof Request === "function" && req instanceof Request) {
      throw new TypeError(
        `${FN}: req is a Fetch API Request that no fetchHandler() wrapped; wrap the handler with fetchHandler(handler) so its context exists`,
      );
    }
    throw new TypeError(
      `${FN}: req must be an incoming request (http.IncomingMessage or http2.Http2ServerRequest), got ${describeValue(req)}`,
    );
  }
  checkOptions(FN, options);
  if (res !== undefined && !isOutgoingResponse(res)) {
    throw new TypeError(
      `${FN}: res must be the request's response (http.ServerResponse), got ${describeValue(res)}`,
    );
  }
  const policy = resolvePolicy(FN, options);
  const response = res ?? (req as { res?: OutgoingResponse }).res;
  if (response === undefined && !isHttp2(req)) {
    throw new TypeError(
      `${FN}: res is missing and this request has no context yet; pass the response on the first call (requestContext(req, res)), or serve the handler with serve() or contextMiddleware()`,
    );
  }
  return bindRequest(req, response, policy, null);
}
