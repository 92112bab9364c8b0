import {
  Code,
  ConnectError,
  createContextKey,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import {
  afterFunc,
  background,
  cause,
  DeadlineExceeded,
  withCancelCause,
  withDeadlineCause,
  type Context,
} from "../index.js";
import { ClientDisconnectedError, RequestTimeoutError } from "../node/index.js";
import { checkContext, checkOptions, describeValue, isContext } from "../validate.js";

/**
 * CallState is what one call on the server knows of its taproot context:
 * created by {@link handlerInterceptor} before the handler runs (or by
 * {@link handlerContext} when no interceptor is installed), and dropped with
 * the call's context values.
 */
class CallState {
  /** Set by the first handlerContext() call of the call; never cleared. */
  // eslint-disable-next-line taproot/no-stored-context -- lives exactly as long as its call
  ctx: Context | undefined = undefined;
  /** Set once the response is complete (the handler returned, or its stream ended), by handlerInterceptor. */
  finished = false;
  /** Set by followSpent while no abort will tell of the response's end; called by handlerInterceptor then. */
  onFinish: (() => void) | undefined = undefined;
  constructor(
    // eslint-disable-next-line taproot/no-stored-context -- the parent of this one call
    readonly parent: Context,
    /** Whether handlerInterceptor watches this call, so `finished` can be trusted. */
    readonly watched: boolean,
  ) {}
}

const callKey = createContextKey<CallState | undefined>(undefined, {
  description: "taproot call state",
});

/**
 * HandlerInterceptorOptions configure {@link handlerInterceptor}.
 *
 * @example
 * ```ts
 * handlerInterceptor({ context: root }); // root from signalContext(background())
 * ```
 */
export interface HandlerInterceptorOptions {
  /** The parent of every call's context: its values are visible and its cancellation reaches the calls. Default `background()`. */
  context?: Context;
}

/**
 * handlerInterceptor returns a server-side Connect interceptor (for
 * `connectNodeAdapter({ interceptors })`, `fastifyConnectPlugin`, ...) that
 * prepares each call for {@link handlerContext}: it gives the calls their
 * parent (`options.context`) and tells the end of a response from a client
 * leaving. Connect aborts `HandlerContext.signal` in both cases with the same
 * reason, so without the interceptor the context cannot tell a completed call
 * from a canceled one. It also answers a handler that rethrows its context's
 * end (`ctx.err()` or its cause) with `deadline_exceeded` or `canceled`,
 * where Connect would say `internal`.
 *
 * @example
 * ```ts
 * http.createServer(
 *   connectNodeAdapter({ routes, interceptors: [handlerInterceptor()] }),
 * ).listen(8080);
 * ```
 */
export function handlerInterceptor(options?: HandlerInterceptorOptions): Interceptor {
  const fn = "handlerInterceptor(options)";
  if (isContext(options)) {
    throw new TypeError(
      `${fn}: options must be an object, got a Context; pass { context: ctx } to make it the parent of every call's context`,
    );
  }
  const parent = checkOptions(fn, options)?.context ?? background();
  if (options?.context !== undefined) checkContext(fn, "options.context", options.context);
  return (next) => async (req) => {
    const state = new CallState(parent, true);
    req.contextValues.set(callKey, state);
    let res;
    try {
      res = await next(req);
    } catch (err) {
      throw toConnectError(err, state);
    }
    if (!res.stream) {
      // Unary: the response is complete; Connect aborts the signal just after.
      state.finished = true;
      state.onFinish?.();
      return res;
    }
    return { ...res, message: finishing(res.message, state) };
  };
}

/** finishing passes a response stream through and marks the call finished when it ends without error. */
async function* finishing<T>(messages: AsyncIterable<T>, state: CallState): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (err) {
    throw toConnectError(err, state);
  }
  state.finished = true;
  state.onFinish?.();
}

/**
 * toConnectError turns a handler's failure that is its context's own end
 * (`ctx.err()` or its cause, rethrown) into the status a Connect client
 * expects, `deadline_exceeded` or `canceled`, where Connect would answer
 * `internal`. Any other error passes through.
 */
function toConnectError(err: unknown, state: CallState): unknown {
  const ctx = state.ctx;
  if (err instanceof ConnectError || ctx === undefined) return err;
  const done = ctx.err();
  if (done === null || (err !== done && err !== cause(ctx))) return err;
  const code = done === DeadlineExceeded ? Code.DeadlineExceeded : Code.Canceled;
  return new ConnectError(done.message, code, undefined, undefined, err);
}

/**
 * A caller that hangs up (closes the connection, or resets an HTTP/2 stream
 * with CANCEL) this close to the deadline it sent gave up at that deadline (its timer ran a little ahead of ours, by the time the request
 * took to arrive): the call ends with DeadlineExceeded, not as a disconnect.
 */
const DEADLINE_SLACK_MS = 50;

/**
 * handlerContext returns the taproot context of a Connect call on the server,
 * from its `HandlerContext`: the same one on every call for a given RPC. It
 * is canceled
 * - at the call's deadline, the caller's `timeoutMs()` (err
 *   `DeadlineExceeded`, cause `RequestTimeoutError`), also when the caller
 *   hangs up a moment before it, as callers do at their deadline (one
 *   past 2^31-1 ms, which Connect's own timer reports after 1 ms, is kept
 *   by the context's own timer);
 * - when the client leaves (cause `ClientDisconnectedError`, or the
 *   `ConnectError` of an HTTP/2 reset), or the handler fails (cause: its
 *   error), or the server's `shutdownSignal` aborts (cause: its reason);
 * - once the response is complete, which Connect also signals with an
 *   abort: this is completion, not cancellation, and leaves no
 *   disconnect cause (err and cause `Canceled`, as Go's context when
 *   `ServeHTTP` returns).
 *
 * Telling completion apart needs {@link handlerInterceptor} on the server;
 * without it, an abort that is not a deadline gets the signal's own reason as
 * its cause. The parent is `handlerInterceptor`'s `options.context`, else
 * `background()`.
 *
 * @example
 * ```ts
 * const routes = (router: ConnectRouter) =>
 *   router.service(Inventory, {
 *     async reserve(req, hctx) {
 *       const ctx = handlerContext(hctx);
 *       return { id: await stock.reserve(ctx, req.sku) }; // stops if the caller gives up
 *     },
 *   });
 * ```
 */
export function handlerContext(hctx: HandlerContext): Context {
  const fn = "handlerContext(hctx)";
  if (
    hctx === null ||
    typeof hctx !== "object" ||
    typeof hctx.timeoutMs !== "function" ||
    !(hctx.signal instanceof AbortSignal) ||
    typeof hctx.values?.get !== "function"
  ) {
    throw new TypeError(
      `${fn}: hctx must be the HandlerContext Connect passes to a handler as its second argument, got ${describeValue(hctx)}`,
    );
  }
  let state = hctx.values.get(callKey);
  if (state === undefined) {
    state = new CallState(background(), false);
    hctx.values.set(callKey, state);
  }
  if (state.ctx !== undefined) return state.ctx;

  const [outer, cancel] = withCancelCause(state.parent);
  let ctx = outer;
  const left = hctx.timeoutMs();
  if (left !== undefined) {
    const source = hctx.protocolName === "connect" ? "connect-timeout-ms" : "grpc-timeout";
    // The deadline's own cancel is not needed: canceling `outer` ends it and its timer.
    // eslint-disable-next-line taproot/lost-cancel
    [ctx] = withDeadlineCause(
      outer,
      Date.now() + left,
      new RequestTimeoutError(Math.max(0, Math.round(left)), source),
    );
  }
  state.ctx = ctx;
  const call = state;
  const onAbort = (): void => {
    // The usual end first: a completed call needs nothing of the signal (its
    // reason is a getter that costs more than the rest of this listener).
    if (call.finished) {
      cancel();
      return;
    }
    const linked = hctx as LinkedSignals;
    // Why the call ended: completion, the shutdown, a client leaving, an error.
    const end = (why: unknown): void => {
      if (call.finished) cancel();
      else if (isShutdown(linked, why)) cancel(why);
      else if (call.watched && isPlainAbort(why)) {
        const url = new URL(hctx.url);
        cancel(new ClientDisconnectedError(hctx.requestMethod, url.pathname + url.search));
      } else cancel(why);
    };
    const reason: unknown = hctx.signal.reason;
    if (left !== undefined) {
      const toGo = (ctx.deadline() as Date).getTime() - Date.now();
      const timedOut = reason instanceof ConnectError && reason.code === Code.DeadlineExceeded;
      // Connect's deadline timer is one setTimeout, which cannot wait past
      // 2^31-1 ms and fires after 1 ms instead: that is no deadline (ours
      // chains timers), and the spent signal can no longer tell of the end.
      if (timedOut && toGo > DEADLINE_SLACK_MS) {
        followSpent(ctx, call, linked, end, cancel);
        return;
      }
      // Connect's own deadline timer fires at our deadline, and a caller
      // that hangs up just before it gave up at it: let ours say
      // DeadlineExceeded, then release `outer` from the parent (canceling it
      // now would end `ctx` as Canceled instead).
      if (timedOut || toGo <= DEADLINE_SLACK_MS) {
        afterFunc(ctx, cancel);
        return;
      }
    }
    end(reason);
  };
  // Connect aborts the signal at the end of every call, so the listener always
  // goes with it. Without `{ once: true }`: a signal aborts only once, and
  // Node's handling of that option costs about 1 µs per call.
  if (hctx.signal.aborted) onAbort();
  else hctx.signal.addEventListener("abort", onAbort);
  return ctx;
}

/**
 * The signals Connect links into `HandlerContext.signal`: createHandlerContext
 * copies its init, these among it, onto the context. Not in Connect's types,
 * so each is checked before use; without them a shutdown reads as its reason's
 * kind, and a spent signal (see followSpent) waits for the response's end.
 */
interface LinkedSignals {
  readonly requestSignal?: unknown;
  readonly shutdownSignal?: unknown;
}

/**
 * isShutdown tells whether `reason` is the server's shutdownSignal's: Connect
 * passes that signal's reason on as is, and one aborted without a reason has
 * an AbortError of its own, another object than the request's.
 */
function isShutdown(linked: LinkedSignals, reason: unknown): boolean {
  const shutdown = linked.shutdownSignal;
  return shutdown instanceof AbortSignal && shutdown.aborted && shutdown.reason === reason;
}

/**
 * followSpent ends `ctx` by what `HandlerContext.signal` would have told,
 * after a false deadline spent it: the response's end (handlerInterceptor
 * calls `call.onFinish`), the request's close and the server's shutdown (the
 * signals behind it). Its deadline still ends it, by its own timer. All of
 * it is released when `ctx` ends.
 */
function followSpent(
  ctx: Context,
  call: CallState,
  linked: LinkedSignals,
  end: (reason: unknown) => void,
  cancel: () => void,
): void {
  const signals = [linked.requestSignal, linked.shutdownSignal].filter(
    (s): s is AbortSignal => s instanceof AbortSignal,
  );
  const already = signals.find((s) => s.aborted);
  if (already !== undefined) {
    end(already.reason);
    return;
  }
  function onAbort(this: AbortSignal): void {
    end(this.reason);
  }
  for (const s of signals) s.addEventListener("abort", onAbort);
  call.onFinish = cancel;
  afterFunc(ctx, () => {
    for (const s of signals) s.removeEventListener("abort", onAbort);
    call.onFinish = undefined;
    cancel(); // releases `outer` from the parent when the deadline ended `ctx`
  });
}

/** isPlainAbort tells an abort without a reason of its own (Node's response closing) from an error. */
function isPlainAbort(reason: unknown): boolean {
  return (
    reason === undefined ||
    (reason instanceof Error && reason.name === "AbortError" && !(reason instanceof ConnectError))
  );
}
