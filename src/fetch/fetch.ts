import type { Context } from "../context.js";
import { deadlineOf } from "../context.js";
import { DeadlineExceeded } from "../errors.js";
import { afterFunc } from "../after-func.js";
import { withSignal } from "../signal.js";
import {
  CONNECT_TIMEOUT,
  GRPC_TIMEOUT,
  formatConnectTimeout,
  formatGrpcTimeout,
  headerBudget,
} from "./deadline-header.js";
import { checkContext, describeValue } from "../validate.js";
import { checkOptions } from "../validate.js";
import { hookHeaders } from "../header-hooks.js";

const FN = "fetchWithContext(ctx, input, init)";

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
  checkContext(FN, "ctx", ctx);
  checkOptions(FN, init, "init");
  const { propagateDeadline, fetch: fetchImpl = globalThis.fetch, ...rest } = init ?? {};
  if (propagateDeadline !== undefined && typeof propagateDeadline !== "boolean") {
    throw new TypeError(
      `${FN}: init.propagateDeadline must be true or false, got ${describeValue(propagateDeadline)}`,
    );
  }
  if (typeof fetchImpl !== "function") {
    throw new TypeError(
      `${FN}: init.fetch must be a fetch function, got ${describeValue(fetchImpl)}; omit it to use the global fetch`,
    );
  }
  const signal = init?.signal as Partial<AbortSignal> | null | undefined;
  if (
    signal != null &&
    (typeof signal.aborted !== "boolean" || typeof signal.addEventListener !== "function")
  ) {
    throw new TypeError(`${FN}: init.signal must be an AbortSignal, got ${describeValue(signal)}`);
  }
  const before = ctx.err();
  if (before !== null) throw before;
  const request: RequestInit = rest;

  // Read as the core reads a parent's: one of ours directly, a user's deadline() only if it is a valid Date.
  const deadline = propagateDeadline === false ? undefined : deadlineOf(FN, ctx);
  if (deadline !== undefined) {
    const left = deadline - Date.now();
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
  // The caller's own signal: init.signal, else a Request's own (fetch
  // follows a Request's signal unless init gives another, and so do we; an
  // explicit `signal: null` means none, as it does for fetch).
  const own =
    init?.signal !== undefined ? init.signal : input instanceof Request ? input.signal : null;
  if (!own) {
    let res: Response;
    try {
      res = await fetchImpl(input, { ...request, signal: ctx.signal });
    } catch (err) {
      // Whatever fetch made of the abort (its own AbortError, a socket error
      // racing it), the caller asked for the context's verdict.
      throw ctx.err() ?? err;
    }
    checkResponse(res);
    return res;
  }
  // Both ctx and the caller's signal must abort the request and the reading
  // of its body. AbortSignal.any would do, but leaks on Node (nodejs/node#55351).
  if (own.aborted) throw own.reason; // as fetch does: nothing is sent
  // What fetch and the body's reading are given: aborted with ctx.err() when
  // ctx ended, else with the caller's own reason, as fetch would have been
  // had that signal been passed on as is.
  const aborter = new AbortController();
  const abort = () => {
    // The child below also ends at release(), once the response is done with: no abort then.
    const err = ctx.err();
    if (err !== null) aborter.abort(err);
    else if (own.aborted) aborter.abort(own.reason);
  };
  let release: () => void;
  if (own === init?.signal) {
    // init.signal may be shared by many calls: a child context follows it,
    // through taproot's own signal path (one listener per signal however
    // many calls share it).
    const [child, cancel] = withSignal(ctx, own);
    child.signal.addEventListener("abort", abort, { once: true });
    release = cancel;
  } else {
    // A Request's own signal, which every Request has (one that never aborts
    // when it was made without one, and nothing tells the two apart): one
    // listener on it, as fetch itself adds for each Request made from
    // another, and ctx through afterFunc. No context is made, so none is left
    // for checkLeaks to report that its user has no cancel for.
    // Whichever ends first lets go of the other.
    const stop = afterFunc(ctx, () => {
      own.removeEventListener("abort", onAbort);
      abort();
    });
    const onAbort = () => {
      stop();
      abort();
    };
    own.addEventListener("abort", onAbort, { once: true });
    release = () => {
      stop();
      own.removeEventListener("abort", onAbort);
    };
  }
  let res: Response;
  try {
    res = await fetchImpl(input, { ...request, signal: aborter.signal });
  } catch (err) {
    release();
    throw ctx.err() ?? (own.aborted ? own.reason : err);
  }
  try {
    checkResponse(res);
  } catch (err) {
    release();
    throw err;
  }
  // The body is read under the same signal, after fetch resolved: what
  // follows the signal lives as long as the response can still be read. A response without a
  // body lets go now; one with a body when it is collected.
  if (res.body == null) release();
  else bodies.register(res, release);
  return res;
}

/** checkResponse refuses what an `init.fetch` resolved to when it is not a Response (an object with a numeric status). */
function checkResponse(res: unknown): asserts res is Response {
  if (res === null || typeof res !== "object" || typeof (res as Response).status !== "number") {
    throw new TypeError(
      `${FN}: init.fetch must resolve to a Response, got ${describeValue(res)}; pass a fetch implementation, or omit init.fetch to use the global fetch`,
    );
  }
}

/** Lets go of a child context once the response it guards is garbage. */
const bodies = new FinalizationRegistry<() => void>((release) => release());
