/**
 * taproot/node: contexts for Node.js servers and processes. Every request gets
 * a context that ends when the client leaves, the server shuts down or the
 * deadline passes; a process gets one that ends on SIGINT or SIGTERM; and
 * outgoing calls carry the remaining time to the next service.
 *
 * @packageDocumentation
 */

import { setMaxListeners } from "node:events";
import { background } from "../index.js";

// The signal of background() (shared by every context that can never be
// canceled) never aborts, so listeners on it are never leaks in waiting: ten
// in-flight fetches given background().signal are ordinary. Lift Node's
// ten-listener warning for it; the core cannot, having no node: imports.
setMaxListeners(0, background().signal);

// Request contexts
export {
  requestContext,
  type IncomingRequest,
  type OutgoingResponse,
  type RequestContextOptions,
} from "./request-context.js";

// Servers and graceful shutdown
export { serve } from "./serve.js";
// ContextServer, Handler, InflightRequest, ServeOptions, ShutdownResult
export type * from "./serve-types.js";

// Adapters: Express/Connect middleware, Fetch API handlers
export { contextMiddleware } from "./middleware.js";
export { fetchHandler, type FetchHandler } from "../fetch/fetch-handler.js";

// Process signals and background workers
export { signalContext } from "./signal-context.js";
export { every, type EveryOptions } from "../fetch/every.js";

// Deadlines across services
// (portable: also in taproot-context/fetch, for runtimes without node: modules)
export { fetchWithContext, type FetchWithContextInit } from "../fetch/fetch.js";
export {
  CONNECT_TIMEOUT,
  GRPC_TIMEOUT,
  formatConnectTimeout,
  formatGrpcTimeout,
  headerBudget,
  type HeaderBudget,
} from "../fetch/deadline-header.js";

// Causes
export {
  ClientDisconnectedError,
  RequestTimeoutError,
  ShutdownError,
  SignalError,
  type RequestTimeoutSource,
} from "./errors.js";
export {
  debugHandler,
  debugSnapshot,
  type DebugHandlerOptions,
  type DebugRequest,
  type DebugRequestInfo,
  type DebugSnapshot,
  type DebugSource,
} from "./debug.js";
