/**
 * taproot/node: contexts for Node.js servers and processes. Every request gets
 * a context that ends when the client leaves, the server shuts down or the
 * deadline passes; a process gets one that ends on SIGINT or SIGTERM; and
 * outgoing calls carry the remaining time to the next service.
 *
 * @packageDocumentation
 */

// Request contexts
export {
  requestContext,
  type IncomingRequest,
  type OutgoingResponse,
  type RequestContextOptions,
} from "./request-context.js";

// Servers and graceful shutdown
export {
  serve,
  type ContextServer,
  type Handler,
  type InflightRequest,
  type ServeOptions,
  type ShutdownResult,
} from "./serve.js";

// Causes
export {
  ClientDisconnectedError,
  RequestTimeoutError,
  ShutdownError,
  SignalError,
} from "./errors.js";
