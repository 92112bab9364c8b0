/**
 * taproot-context/hono: taproot contexts for Hono. {@link contextMiddleware}
 * puts each request's context in `c.get("ctx")`: Node's request and response
 * under `@hono/node-server`, `Request.signal` on every other runtime.
 *
 * @packageDocumentation
 */

export { contextMiddleware, type ContextEnv, type ContextVariables } from "./middleware.js";
