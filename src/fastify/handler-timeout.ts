/**
 * A Fastify 5 route's `handlerTimeout` as a deadline of `request.ctx`.
 * Fastify enforces it with a timer of its own, which aborts `request.signal`
 * with FST_ERR_HANDLER_TIMEOUT and answers 503; without this the context
 * would only end when that reply was sent, as a plain `Canceled`, and
 * `ctx.deadline()` would not say it was coming.
 */
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { DeadlineExceeded } from "../index.js";
import { RequestTimeoutError } from "../fetch/errors.js";
import { DeadlineQueue } from "../fetch/request-context.js";
import { requestTime } from "../fetch/request-clock.js";
import { boundContext, type RequestLifetime } from "../node/request-lifetime.js";

/** Fastify's code for the error it aborts `request.signal` with when a handlerTimeout fires. */
const FST_ERR_HANDLER_TIMEOUT = "FST_ERR_HANDLER_TIMEOUT";

/**
 * RouteTimeoutQueue holds the live requests of one route with a
 * handlerTimeout, as the `timeout` option's queue holds every request's:
 * one timer for the route, and a cause naming the route.
 */
class RouteTimeoutQueue extends DeadlineQueue {
  readonly #cause: RequestTimeoutError;

  constructor(ms: number, url: string) {
    // "timeout": the budget is the server's own, not the caller's.
    super(ms, "timeout");
    const err = new RequestTimeoutError(ms, "timeout");
    err.message = `request timed out after ${ms} ms (handlerTimeout of route '${url}')`;
    this.#cause = err;
  }

  override cause(): RequestTimeoutError {
    return this.#cause;
  }
}

/**
 * handlerTimeoutHook returns the route-level onRequest hook that gives each
 * request of a route with a `handlerTimeout` of `ms` that deadline: it runs
 * after the plugin's own hook has bound `request.ctx`. A sooner deadline
 * (the `timeout` option, a header, the parent's) stays.
 */
export function handlerTimeoutHook(
  ms: number,
  url: string,
): (request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction) => void {
  const queue = new RouteTimeoutQueue(ms, url);
  return (request, _reply, next) => {
    const ctx = boundContext(request.raw);
    if (ctx !== undefined && ctx._error === null) {
      const deadline = ctx._deadline;
      if (deadline === undefined || deadline > requestTime() + ms) {
        // A context waits in one queue at a time: the later deadline's goes.
        ctx._queue?.remove(ctx);
        queue.add(ctx);
        // Fastify's timer was set before this hook ran, so it usually fires
        // first: its abort ends the context at the same deadline. The signal
        // is the request's own, and dies with it.
        request.signal.addEventListener("abort", () => onAbort(ctx, request, queue), {
          once: true,
        });
      }
    }
    next();
  };
}

/** onAbort ends the context at the route's deadline when Fastify's handlerTimeout aborted request.signal. */
function onAbort(ctx: RequestLifetime, request: FastifyRequest, queue: RouteTimeoutQueue): void {
  const reason = request.signal.reason as { code?: unknown } | undefined;
  if (reason?.code === FST_ERR_HANDLER_TIMEOUT) ctx._cancel(DeadlineExceeded, queue.cause());
}
