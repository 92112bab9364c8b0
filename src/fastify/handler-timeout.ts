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
import { requestTime } from "../fetch/request-clock.js";
import { boundContext, type RequestLifetime } from "../node/request-lifetime.js";

/** Fastify's code for the error it aborts `request.signal` with when a handlerTimeout fires. */
const FST_ERR_HANDLER_TIMEOUT = "FST_ERR_HANDLER_TIMEOUT";

/**
 * routeTimeoutError is the cause every request of one route with a
 * handlerTimeout of `ms` gets when it fires.
 */
function routeTimeoutError(ms: number, url: string): RequestTimeoutError {
  // "timeout": the budget is the server's own, not the caller's.
  const err = new RequestTimeoutError(ms, "timeout");
  err.message = `request timed out after ${ms} ms (handlerTimeout of route '${url}')`;
  return err;
}

/**
 * handlerTimeoutHook returns the route-level onRequest hook that gives each
 * request of a route with a `handlerTimeout` of `ms` that deadline: it runs
 * after the plugin's own hook has bound `request.ctx`. A sooner deadline
 * (the `timeout` option, a header, the parent's) stays.
 *
 * The context gets the deadline, and no timer of its own: Fastify's timer,
 * set when the request arrived, enforces it, and its abort of
 * `request.signal` ends the context. A timer of ours, counted from this
 * turn's clock, could fire first, and the handler would then answer before
 * Fastify's 503; a later deadline's queue (the `timeout` option's) lets go.
 */
export function handlerTimeoutHook(
  ms: number,
  url: string,
): (request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction) => void {
  const cause = routeTimeoutError(ms, url);
  return (request, _reply, next) => {
    const ctx = boundContext(request.raw);
    if (ctx !== undefined && ctx._error === null) {
      const deadline = requestTime() + ms;
      if (ctx._deadline === undefined || ctx._deadline > deadline) {
        ctx._queue?.remove(ctx);
        ctx._deadline = deadline;
        // The signal is the request's own, and dies with it.
        request.signal.addEventListener("abort", () => onAbort(ctx, request, cause), {
          once: true,
        });
      }
    }
    next();
  };
}

/** onAbort ends the context at the route's deadline when Fastify's handlerTimeout aborted request.signal. */
function onAbort(ctx: RequestLifetime, request: FastifyRequest, cause: RequestTimeoutError): void {
  const reason = request.signal.reason as { code?: unknown } | undefined;
  if (reason?.code === FST_ERR_HANDLER_TIMEOUT) ctx._cancel(DeadlineExceeded, cause);
}
