import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context as HonoContext, MiddlewareHandler, Next } from "hono";
import type { Context } from "../index.js";
import { requestContextOf } from "../fetch/fetch-handler.js";
import { resolvePolicy, type RequestCtx, type RequestPolicy } from "../fetch/request-context.js";
import { fetchHandler, type RequestContextOptions } from "../node/index.js";
import { bindRequest, boundContext, type RequestLifetime } from "../node/request-lifetime.js";
import { checkContext, checkMs, describeValue } from "../validate.js";

/**
 * ContextVariables are the Hono variables {@link contextMiddleware} sets:
 * `c.get("ctx")` (or `c.var.ctx`) is the request's taproot context.
 *
 * @example
 * ```ts
 * const app = new Hono<{ Variables: ContextVariables }>();
 * app.get("/", (c) => c.text(String(c.var.ctx.deadline())));
 * ```
 */
export interface ContextVariables {
  /** The request's taproot context. */
  ctx: Context;
}

/**
 * ContextEnv is the Hono environment of an app using {@link contextMiddleware}.
 *
 * @example
 * ```ts
 * const app = new Hono<ContextEnv>();
 * app.use(contextMiddleware({ timeout: 5_000 }));
 * ```
 */
export interface ContextEnv {
  Variables: ContextVariables;
}

/** The Node objects @hono/node-server passes as `c.env` (its `HttpBindings` or `Http2Bindings`). */
interface NodeBindings {
  incoming?: unknown;
  outgoing?: unknown;
}

const FN = "contextMiddleware(options)";

function noop(): void {}

/**
 * honoError reads the error Hono caught from a handler: Hono answers it
 * itself (`app.onError`, or its own 500), so the middleware's `next()`
 * resolves as usual, with `c.error` set.
 */
function honoError(c: object): unknown {
  return (c as HonoContext).error;
}

/**
 * reportsHonoError makes the context of a Node request Hono handles end with
 * the handler's error as cause when Hono caught one (read at the release,
 * once the response is done), and returns it. A lifetime released already
 * is left as it is: it would keep `c` alive.
 */
function reportsHonoError(ctx: RequestLifetime, c: HonoContext): RequestLifetime {
  if (ctx.frameworkRequest === null && ctx.req !== null) {
    ctx.frameworkRequest = c;
    ctx.caughtError = honoError;
  }
  return ctx;
}

/**
 * contextMiddleware returns a Hono middleware that gives each request a
 * taproot context, `c.get("ctx")`, for every later middleware and handler.
 * Which context depends on where Hono runs:
 *
 * - Under `@hono/node-server` (`c.env.incoming` and `c.env.outgoing` are
 *   Node's request and response), it is taproot/node's `requestContext`: it
 *   lives until the response has been sent, so a streamed body
 *   (`stream()`, `streamSSE()`) keeps a live context after the handler
 *   returned, and it is canceled when the client disconnects before the end
 *   (cause `ClientDisconnectedError`).
 * - Elsewhere (Cloudflare Workers, Deno, Bun, `app.fetch(request)`), it
 *   follows `c.req.raw.signal` (the client left: `ClientDisconnectedError`)
 *   and ends when the rest of the chain has returned, as `fetchHandler`'s
 *   does: a body streamed after that must watch `c.req.raw.signal` itself.
 *
 * Either way it ends at the request's deadline: the earliest of
 * `options.timeout` and the caller's `connect-timeout-ms` or `grpc-timeout`
 * header (err `DeadlineExceeded`, cause `RequestTimeoutError`); and its
 * parent is `options.context`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { contextMiddleware, type ContextEnv } from "taproot-context/hono";
 *
 * const app = new Hono<ContextEnv>();
 * app.use(contextMiddleware({ timeout: 5_000 }));
 * app.get("/search", async (c) => c.json(await search(c.get("ctx"), c.req.query("q"))));
 * ```
 */
export function contextMiddleware(options?: RequestContextOptions): MiddlewareHandler<ContextEnv> {
  // Checked here so that a bad option names this function, not the ones below.
  if (options?.context !== undefined) checkContext(FN, "options.context", options.context);
  if (options?.timeout !== undefined) checkMs(FN, "options.timeout", options.timeout, false);
  if (options?.maxHeaderTimeout !== undefined) {
    checkMs(FN, "options.maxHeaderTimeout", options.maxHeaderTimeout, false);
  }
  const policy = resolvePolicy(FN, options);
  const viaFetch = fetchHandler(
    async (ctx: Context, _request: Request, c: HonoContext<ContextEnv>, next: Next) => {
      c.set("ctx", ctx);
      await next();
      // Hono answered a handler's error itself: the context ends with it as cause.
      if (c.error !== undefined) (ctx as RequestCtx).handlerFailed(c.error);
      return c.res;
    },
    options,
  );
  // Not an async function: the Node path hands back next()'s own promise, one fewer per request.
  return (c, next) => {
    const env = c.env as NodeBindings | undefined;
    const incoming = env?.incoming;
    const outgoing = env?.outgoing;
    if (isNodeRequest(incoming) && isNodeResponse(outgoing)) {
      // The HTTP/2 compatibility objects pass too: bindRequest finds their
      // stream. A request served by serve() keeps the context it has.
      const lifetime = boundContext(incoming) ?? bindRequest(incoming, outgoing, policy, null);
      c.set("ctx", reportsHonoError(lifetime, c));
      return next();
    }
    return viaFetch(c.req.raw, c, next).then(noop);
  };
}

/** The policy of requestContext(c) without options, resolved on its first use. */
let defaultPolicy: RequestPolicy | undefined;

/**
 * requestContext returns the taproot context of the request a Hono handler
 * (or middleware) is handling: the same one on every call for a given
 * request. It is the way without a middleware, and the cheaper one: Hono
 * runs a route that has a single handler and no middleware on a fast path,
 * which any `app.use()` leaves, and the context is made only by the first
 * call, so a handler that never asks for it costs nothing.
 *
 * - Under `@hono/node-server` (`c.env.incoming`/`outgoing`), it is
 *   taproot/node's `requestContext` for Node's request and response, made
 *   on the first call with `options` (later calls return it whatever they
 *   pass; an options object written inline costs no check after the first).
 *   It ends as {@link contextMiddleware}'s does on Node: when the response
 *   has been sent, so a streamed body keeps it live; when the client leaves;
 *   at the deadline.
 * - Elsewhere, a Fetch API Request has no response to tell its end, so the
 *   context must have been made around the handler: by
 *   {@link contextMiddleware} (its `c.get("ctx")`), or by wrapping
 *   `app.fetch` with `fetchHandler` of `taproot-context/fetch`; without
 *   either, requestContext throws a `TypeError` that says so. `options` are
 *   then ignored: the wrapper's own apply.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { requestContext } from "taproot-context/hono";
 *
 * const app = new Hono();
 * app.get("/search", async (c) => c.json(await search(requestContext(c), c.req.query("q"))));
 * ```
 */
export function requestContext(c: HonoContext, options?: RequestContextOptions): Context {
  const fn = "requestContext(c, options)";
  if (
    c === null ||
    typeof c !== "object" ||
    !("env" in c) ||
    typeof (c as Partial<HonoContext>).get !== "function" ||
    typeof (c as Partial<HonoContext>).req !== "object"
  ) {
    throw new TypeError(
      `${fn}: c must be the Context Hono passes to a handler or middleware, got ${describeValue(c)}`,
    );
  }
  const env = c.env as NodeBindings | undefined;
  const incoming = env?.incoming;
  const outgoing = env?.outgoing;
  if (isNodeRequest(incoming) && isNodeResponse(outgoing)) {
    const known = boundContext(incoming);
    if (known !== undefined) return reportsHonoError(known, c);
    const policy =
      options === undefined
        ? (defaultPolicy ??= resolvePolicy(fn, undefined))
        : resolvePolicy(fn, options);
    return reportsHonoError(bindRequest(incoming, outgoing, policy, null), c);
  }
  const made = (c.get("ctx") as Context | undefined) ?? requestContextOf(c.req.raw);
  if (made !== undefined) return made;
  throw new TypeError(
    `${fn}: this request has no Node response to follow (not under @hono/node-server) and no context made around its handler; install contextMiddleware() with app.use(), or serve fetchHandler((ctx, request, ...rest) => app.fetch(request, ...rest))`,
  );
}

function isNodeRequest(v: unknown): v is IncomingMessage {
  return typeof v === "object" && v !== null && "rawHeaders" in v && "method" in v;
}

function isNodeResponse(v: unknown): v is ServerResponse {
  return typeof v === "object" && v !== null && "writeHead" in v;
}
