import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type CallOptions,
  type Interceptor,
  type StreamResponse,
  type UnaryResponse,
} from "@connectrpc/connect";
import { DeadlineExceeded, withSignal, type Context } from "../index.js";
import { MAX_TIMER_MS } from "../deadline.js";
import { checkContext, checkOptions, describeValue, isContext } from "../validate.js";
import {
  CONNECT_TIMEOUT,
  GRPC_TIMEOUT,
  formatConnectTimeout,
  formatGrpcTimeout,
  headerBudget,
} from "../fetch/deadline-header.js";

/**
 * contextKey is the Connect context value under which a client call carries
 * its taproot context, for {@link callInterceptor}. {@link callOptions} sets
 * it; set it yourself when you build `contextValues` by hand.
 *
 * @example
 * ```ts
 * await client.reserve(req, { contextValues: createContextValues().set(contextKey, ctx) });
 * ```
 */
// A call without a context has no value here: the interceptor lets it pass untouched.
// eslint-disable-next-line taproot/no-nullish-context
export const contextKey = createContextKey<Context | undefined>(undefined, {
  description: "taproot context",
});

/**
 * callOptions returns Connect call options that carry `ctx` to
 * {@link callInterceptor} (under {@link contextKey}), which must be installed
 * on the transport: it aborts the call when `ctx` is done, and sends the
 * remaining time to the server (`connect-timeout-ms` or `grpc-timeout`) so
 * the callee's context ends when the caller's does. `timeoutMs` is set 10 ms
 * past the context's deadline, a backstop: Connect's own timer, firing first,
 * would reject with its own error and drop the context's. `init`'s own
 * options are kept; its `timeoutMs` can only shorten the call. A context with more than 2^31-1 ms (about 24.8 days)
 * left gets no `timeoutMs` (Connect's timer cannot wait that long and would
 * fail the call at once): {@link callInterceptor} sends the deadline and ends
 * the call at it. The context's signal is deliberately not the call's
 * `signal`: Connect would report its deadline as `canceled`, and drop the
 * context's error.
 *
 * @example
 * ```ts
 * const res = await client.reserve({ sku: "A-42" }, callOptions(ctx));
 * ```
 */
export function callOptions(ctx: Context, init?: CallOptions): CallOptions {
  const fn = "callOptions(ctx, init)";
  checkContext(fn, "ctx", ctx);
  if (isContext(init)) {
    throw new TypeError(
      `${fn}: init must be Connect call options, got a Context; pass one context, as ctx, and the call's options (or nothing) after it`,
    );
  }
  checkOptions(fn, init, "init");
  const given = init?.timeoutMs;
  if (given !== undefined && (typeof given !== "number" || Number.isNaN(given))) {
    throw new TypeError(
      `${fn}: init.timeoutMs must be a number of milliseconds, got ${describeValue(given)}; leave it out to take the context's remaining time`,
    );
  }
  const options: CallOptions = { ...init };
  options.contextValues = (init?.contextValues ?? createContextValues()).set(contextKey, ctx);
  const deadline = ctx.deadline();
  if (deadline === undefined) return options;
  // Connect's timer is a backstop, set a little after the context's
  // deadline: once it fires, Connect rejects with its own deadline_exceeded
  // (cause undefined) whatever the interceptor throws, and the context's
  // verdict is lost. callInterceptor lowers the header to the whole
  // milliseconds left, so the callee never gets more time than is left.
  const backstop = Math.max(0, Math.ceil(deadline.getTime() - Date.now())) + DEADLINE_SLACK_MS;
  if (given !== undefined && given <= backstop) return options;
  // Connect waits for timeoutMs with one setTimeout, which cannot wait past
  // 2^31-1 ms (about 24.8 days) and fires after 1 ms instead, failing the
  // call at once. Past that, no timeoutMs: callInterceptor still sends the
  // remaining time in the deadline header, and the context's own timer,
  // which chains timers for far deadlines, ends the call at the deadline.
  if (backstop > MAX_TIMER_MS) delete options.timeoutMs;
  else options.timeoutMs = backstop;
  return options;
}

/**
 * How far apart Connect's deadline and the context's may be. Node's timers
 * count from the event loop's cached clock, so of two timers for the same
 * deadline either may fire first by a millisecond or two: callOptions sets
 * Connect's this much after the context's, and a deadline_exceeded this close
 * to the context's deadline (from the server, whose deadline the header set
 * a little earlier) is the context's.
 */
const DEADLINE_SLACK_MS = 10;

/**
 * callInterceptor returns a client-side Connect interceptor (for a
 * transport's `interceptors`) that binds every call carrying a context under
 * {@link contextKey} (see {@link callOptions}) to it: the call is aborted
 * when the context is done, the context's remaining time goes to the server
 * in the protocol's deadline header (only ever lowering one already set),
 * and a call the context ended rejects with the context's verdict as a
 * `ConnectError`: code `deadline_exceeded` with cause `DeadlineExceeded`, or
 * `canceled` with cause `ctx.err()`. A context already done, or with less
 * than a millisecond left, fails the call without sending it. Calls without
 * a context pass through untouched.
 *
 * @example
 * ```ts
 * const transport = createConnectTransport({
 *   baseUrl: "http://inventory.internal",
 *   httpVersion: "1.1",
 *   interceptors: [callInterceptor()],
 * });
 * const client = createClient(Inventory, transport);
 * await client.reserve({ sku: "A-42" }, callOptions(ctx));
 * ```
 */
export function callInterceptor(): Interceptor {
  return (next) => async (req) => {
    const ctx = req.contextValues.get(contextKey);
    if (ctx === undefined) return await next(req);
    if (ctx.err() !== null) throw verdict(ctx);
    const deadline = ctx.deadline();
    if (deadline !== undefined) {
      const left = deadline.getTime() - Date.now();
      if (left < 1) throw verdict(ctx, true);
      lowerTimeout(req.header, left);
    }
    // The call's signal aborts when ctx is done or Connect aborts the call.
    // A child context rather than AbortSignal.any, which on Node keeps an
    // entry on ctx.signal per call for as long as ctx lives
    // (nodejs/node#55351); the child is released when the call ends.
    const [call, release] = withSignal(ctx, req.signal);
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next({ ...req, signal: call.signal });
    } catch (err) {
      release();
      // Whatever the transport made of the abort (Connect reads any abort
      // reason as canceled), the caller asked for the context's answer.
      throw judge(ctx, err);
    }
    if (!res.stream) {
      release();
      return res;
    }
    return { ...res, message: judged(ctx, res.message, release) };
  };
}

/**
 * judged passes a response stream through, turning an error the context
 * caused into its verdict, and releases the call's context once the stream
 * ends, fails, or its reader stops.
 */
async function* judged<T>(
  ctx: Context,
  messages: AsyncIterable<T>,
  release: () => void,
): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw judge(ctx, err);
  } finally {
    release();
  }
}

/**
 * judge is what a call that failed with `err` rejects with: the context's
 * verdict when the context is done, or when Connect reports the deadline
 * and the context's has all but passed; else `err` itself.
 */
function judge(ctx: Context, err: unknown): unknown {
  if (ctx.err() !== null) return verdict(ctx);
  if (err instanceof ConnectError && err.code === Code.DeadlineExceeded) {
    const deadline = ctx.deadline();
    if (deadline !== undefined && deadline.getTime() - Date.now() <= DEADLINE_SLACK_MS) {
      return verdict(ctx, true);
    }
  }
  return err;
}

/** verdict is the ConnectError a call ended by `ctx` rejects with, its cause `ctx.err()`. */
function verdict(ctx: Context, expired = false): ConnectError {
  const why = expired ? DeadlineExceeded : (ctx.err() as Error);
  const code = why === DeadlineExceeded ? Code.DeadlineExceeded : Code.Canceled;
  return new ConnectError(why.message, code, undefined, undefined, why);
}

/**
 * lowerTimeout writes the remaining time into the deadline header of the
 * call's protocol: `grpc-timeout` for gRPC and gRPC-web, `connect-timeout-ms`
 * for Connect. A value already there (from `timeoutMs`) is only lowered.
 */
function lowerTimeout(header: Headers, leftMs: number): void {
  const whole = Math.floor(leftMs);
  const grpc = (header.get("content-type") ?? "").startsWith("application/grpc");
  const name = grpc ? GRPC_TIMEOUT : CONNECT_TIMEOUT;
  const value = header.get(name) ?? undefined;
  const mine = grpc ? headerBudget(undefined, value) : headerBudget(value, undefined);
  if (mine === undefined || whole < mine.ms) {
    header.set(name, grpc ? formatGrpcTimeout(whole) : formatConnectTimeout(whole));
  }
}
