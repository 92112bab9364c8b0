/**
 * taproot-context/connect: taproot contexts for Connect-ES (`@connectrpc/connect`).
 * On the server, {@link handlerContext} turns a call's `HandlerContext` into
 * a context (its deadline, its cancellation, its completion), with
 * {@link handlerInterceptor} installed; on the client, {@link callOptions}
 * and {@link callInterceptor} bind a call to a context.
 *
 * @packageDocumentation
 */

// Server side
export { handlerContext, handlerInterceptor, type HandlerInterceptorOptions } from "./handler.js";

// Client side
export { callInterceptor, callOptions, contextKey } from "./client.js";
