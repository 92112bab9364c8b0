/**
 * taproot/fetch: the server-side pieces that need no `node:` module, for
 * every runtime with the Fetch API (Node, Deno, Bun, Cloudflare Workers,
 * browsers): outgoing calls bound to a context that carry its remaining time
 * to the next service, Fetch API handlers whose requests get a context, the
 * deadline headers both speak, and `every`, the background worker's loop.
 * `taproot-context/node` re-exports them.
 *
 * @packageDocumentation
 */

export { fetchWithContext, type FetchWithContextInit } from "./fetch.js";
export { fetchHandler, requestContextOf, type FetchHandler } from "./fetch-handler.js";
export { type RequestContextOptions } from "./request-context.js";
export {
  CONNECT_TIMEOUT,
  GRPC_TIMEOUT,
  formatConnectTimeout,
  formatGrpcTimeout,
  headerBudget,
  type HeaderBudget,
} from "./deadline-header.js";
export {
  ClientDisconnectedError,
  RequestTimeoutError,
  type RequestTimeoutSource,
} from "./errors.js";
export { every, type EveryOptions } from "./every.js";
