import { DeadlineExceeded, withSignal, type Context } from "../index.js";
import {
  CONNECT_TIMEOUT,
  GRPC_TIMEOUT,
  formatConnectTimeout,
  formatGrpcTimeout,
  headerBudget,
} from "./deadline-header.js";
import { checkContext } from "../validate.js";
import { hookHeaders } from "../header-hooks.js";

/**
 * FetchWithContextInit is `RequestInit` plus the options of {@link fetchWithContext}.
 *
 * @example
 * ```ts
 * // A partner API outside the trust boundary: no deadline header.
 * await fetchWithContext(ctx, "https://api.example.com/v1/rates", { propagateDeadline: false });
 * ```
 */
export interface FetchWithContextInit extends RequestInit {
  /**
   * Whether to send the context's remaining time as `connect-timeout-ms` (and
   * `grpc-timeout` for `application/grpc` requests). Default `true`; turn it
   * off for services outside your trust boundary.
   */
  propagateDeadline?: boolean;
  /** The fetch implementation to call. Default: the global `fetch`. */
  fetch?: typeof fetch;
}

/**
 * fetchWithContext calls `fetch(input, init)` bound to `ctx`: the request and
 * the reading of its body are aborted when `ctx` is done, and the promise
 * rejects with `ctx.err()` (`Canceled` or `DeadlineExceeded`). If `ctx` has a
 * deadline, the remaining whole milliseconds go to the next service in
 * `connect-timeout-ms` (relative, so clocks need not agree), and in
 * `grpc-timeout` too when the content type is `application/grpc`; a server
 * using {@link requestContext} or {@link serve} adopts it as its request
 * deadline. When no time is left, it rejects with `DeadlineExceeded` without
 * sending anything. A header the caller set already is only ever lowered.
 *
 * @example
 * ```ts
 * const res = await fetchWithContext(ctx, "http://inventory.internal/items/42");
 * const item = await res.json();
 * ```
 */
export async function fetchWithContext(
  ctx: Context,
  input: string | URL | Request,
  init?: FetchWithContextInit,
): Promise<Response> {
  checkContext("fetchWithContext(ctx, input, init)", "ctx", ctx);
  const before = ctx.err();
  if (before !== null) throw before;
  const { propagateDeadline, fetch: fetchImpl = globalThis.fetch, ...rest } = init ?? {};
  const request: RequestInit = rest;

  const deadline = propagateDeadline === false ? undefined : ctx.deadline();
  if (deadline !== undefined) {
    const left = deadline.getTime() - Date.now();
    // Less than a whole millisecond cannot be expressed; the callee would
    // read 0 and fail at once, so fail here without a round trip.
    if (left < 1) throw DeadlineExceeded;
    const headers = new Headers(
      init?.headers ?? (input instanceof Request ? input.headers : undefined),
    );
    const mine = headerBudget(headers.get(CONNECT_TIMEOUT) ?? undefined, undefined);
    headers.set(CONNECT_TIMEOUT, formatConnectTimeout(Math.min(left, mine?.ms ?? Infinity)));
    const type = headers.get("content-type") ?? "";
    if (type.startsWith("application/grpc")) {
      const theirs = headerBudget(undefined, headers.get(GRPC_TIMEOUT) ?? undefined);
      headers.set(GRPC_TIMEOUT, formatGrpcTimeout(Math.min(left, theirs?.ms ?? Infinity)));
    }
    request.headers = headers;
  }
  // --- header hooks (taproot-context/otel's trace headers); see ../header-hooks.ts ---
  const hooked = hookHeaders(
    ctx,
    request.headers ?? (input instanceof Request ? input.headers : undefined),
  );
  if (hooked !== undefined) request.headers = hooked;
  // --- end of header hooks ---
  const signal = init?.signal ? either(ctx, init.signal) : ctx.signal;
  try {
    return await fetchImpl(input, { ...request, signal });
  } catch (err) {
    // Whatever fetch made of the abort (its own AbortError, a socket error
    // racing it), the caller asked for the context's verdict.
    throw ctx.err() ?? err;
  }
}

/**
 * either returns a signal that aborts when `ctx` is done or `signal` aborts.
 * AbortSignal.any arrived in Node 20.3; before it, a child context of
 * withSignal does the same, its listener on `signal` removed when either
 * side ends (it cannot be released sooner: the response body is read after
 * fetch resolves, under the same signal).
 */
function either(ctx: Context, signal: AbortSignal): AbortSignal {
  if (typeof AbortSignal.any === "function") return AbortSignal.any([ctx.signal, signal]);
  // eslint-disable-next-line taproot/lost-cancel -- released when either side ends, see above
  return withSignal(ctx, signal)[0].signal;
}
