import type { Context } from "../context.js";
import { CONNECT_TIMEOUT, GRPC_TIMEOUT } from "./deadline-header.js";
import { describeValue } from "../validate.js";
import {
  fetchContexts,
  newRequestContext,
  resolvePolicy,
  type RequestContextOptions,
} from "./request-context.js";

const CALL = "fetchHandler(handler)(request)";

/**
 * checkRequest accepts a Fetch API Request, or an object shaped like one
 * (a `url` string, `headers` with `get()`, an optional `signal`), and refuses
 * anything else before a context is made.
 */
function checkRequest(request: unknown): asserts request is Request {
  const r = request as Partial<Request> | null | undefined;
  const why =
    r === null || typeof r !== "object"
      ? `got ${describeValue(request)}`
      : typeof r.url !== "string"
        ? `its url is ${describeValue(r.url)}, want a string`
        : typeof r.headers?.get !== "function"
          ? `its headers are ${describeValue(r.headers)}, want a Headers object`
          : r.signal != null &&
              (typeof r.signal.aborted !== "boolean" ||
                typeof r.signal.addEventListener !== "function" ||
                typeof r.signal.removeEventListener !== "function")
            ? `its signal is ${describeValue(r.signal)}, want an AbortSignal`
            : undefined;
  if (why !== undefined) {
    throw new TypeError(
      `${CALL}: request must be a Fetch API Request, ${why}; pass the Request your runtime gives the handler`,
    );
  }
}

/** target is a request's path and query, for ClientDisconnectedError; the URL as given if it does not parse. */
function target(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

/**
 * FetchHandler is a Fetch API handler that takes the request's context first.
 *
 * @example
 * ```ts
 * const handler: FetchHandler<[]> = async (ctx, request) =>
 *   Response.json(await db.query(ctx, new URL(request.url).searchParams.get("q")));
 * ```
 */
export type FetchHandler<A extends unknown[]> = (
  ctx: Context,
  request: Request,
  ...rest: A
) => Response | Promise<Response>;

/**
 * fetchHandler adapts a context-aware handler to the Fetch API shape
 * `(request, ...rest) => Promise<Response>` of Hono, Bun, Deno and Next route
 * handlers. Each request gets a context that is canceled when `request.signal`
 * aborts (the client left; cause {@link ClientDisconnectedError}), at the
 * deadline (`options.timeout` and the caller's deadline headers), and when the
 * handler's promise settles, as Go's is when `ServeHTTP` returns. Work that
 * streams the response body after the handler returned must watch
 * `request.signal` instead. `requestContext(request)` returns the same context.
 *
 * @example
 * ```ts
 * export default {
 *   fetch: fetchHandler(async (ctx, request) => {
 *     const rows = await db.query(ctx, "select 1");
 *     return Response.json(rows);
 *   }, { timeout: 5_000 }),
 * };
 * ```
 */
export function fetchHandler<A extends unknown[]>(
  handler: FetchHandler<A>,
  options?: RequestContextOptions,
): (request: Request, ...rest: A) => Promise<Response> {
  const fn = "fetchHandler(handler, options)";
  if (typeof handler !== "function") {
    throw new TypeError(
      `${fn}: handler must be a function (ctx, request) => Response, got ${describeValue(handler)}`,
    );
  }
  const policy = resolvePolicy(fn, options);
  return async (request, ...rest) => {
    checkRequest(request);
    const headers = policy.headers ? request.headers : undefined;
    const ctx = newRequestContext(
      policy,
      headers?.get(CONNECT_TIMEOUT) ?? undefined,
      headers?.get(GRPC_TIMEOUT) ?? undefined,
    );
    const signal = request.signal as AbortSignal | null | undefined;
    // The client left: a disconnect, or the deadline if the caller's header
    // set it and it had all but passed (the caller gave up at its deadline).
    const onAbort = (): void =>
      ctx.clientLeft(String(request.method ?? "GET"), target(request.url));
    if (signal?.aborted) onAbort();
    // Removed below once the handler is done (no `{ once: true }`, which Node charges for).
    else signal?.addEventListener("abort", onAbort);
    fetchContexts.set(request, ctx);
    try {
      const response = await handler(ctx, request, ...rest);
      checkResult(response);
      return response;
    } catch (error) {
      // What the handler left running learns why: the error is the cause.
      ctx.handlerFailed(error);
      throw error;
    } finally {
      ctx.end();
      signal?.removeEventListener("abort", onAbort);
    }
  };
}

/** checkResult refuses a handler's result that is not a Response (an object with a numeric status and headers). */
function checkResult(response: unknown): asserts response is Response {
  const r = response as Partial<Response> | null | undefined;
  if (r === null || typeof r !== "object" || typeof r.status !== "number" || r.headers == null) {
    throw new TypeError(
      `${CALL}: the handler must return a Response (or a promise of one), got ${describeValue(response)}; return e.g. new Response(body) or Response.json(value)`,
    );
  }
}

/**
 * requestContextOf returns the context {@link fetchHandler} made for
 * `request`, or undefined for a request no fetchHandler wrapped (or one whose
 * handler has returned, whose context is done). On Node,
 * `requestContext(request)` of taproot-context/node returns the same one.
 *
 * @example
 * ```ts
 * function audit(request: Request): void {
 *   const ctx = requestContextOf(request);
 *   if (ctx?.err() !== null) log.warn("audit after the request ended");
 * }
 * ```
 */
export function requestContextOf(request: Request): Context | undefined {
  return request !== null && typeof request === "object" ? fetchContexts.get(request) : undefined;
}
