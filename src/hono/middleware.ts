import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context as HonoContext, MiddlewareHandler, Next } from "hono";
import type { Context } from "../index.js";
import {
  contextMiddleware as nodeContextMiddleware,
  fetchHandler,
  requestContext,
  type RequestContextOptions,
} from "../node/index.js";
import { checkContext, checkMs } from "../validate.js";

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
  const bindNode = nodeContextMiddleware(options);
  const viaFetch = fetchHandler(
    async (ctx: Context, _request: Request, c: HonoContext<ContextEnv>, next: Next) => {
      c.set("ctx", ctx);
      await next();
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
      // The HTTP/2 compatibility objects pass too: requestContext finds their stream.
      bindNode(incoming, outgoing, noop);
      c.set("ctx", requestContext(incoming));
      return next();
    }
    return viaFetch(c.req.raw, c, next).then(noop);
  };
}

function isNodeRequest(v: unknown): v is IncomingMessage {
  return typeof v === "object" && v !== null && "rawHeaders" in v && "method" in v;
}

function isNodeResponse(v: unknown): v is ServerResponse {
  return typeof v === "object" && v !== null && "writeHead" in v;
}
