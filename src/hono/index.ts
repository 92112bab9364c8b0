/**
 * taproot-context/hono: taproot contexts for Hono. {@link contextMiddleware}
 * puts each request's context in `c.get("ctx")`: Node's request and response
 * under `@hono/node-server`, `Request.signal` on every other runtime.
 * {@link requestContext} returns it without a middleware, made on first use
 * (under `@hono/node-server`), which keeps Hono's fast path for routes
 * without middleware.
 *
 * @packageDocumentation
 */

export {
  contextMiddleware,
  requestContext,
  type ContextEnv,
  type ContextVariables,
} from "./middleware.js";
