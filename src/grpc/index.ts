/**
 * taproot-context/grpc: contexts for `@grpc/grpc-js` calls, on both sides.
 *
 * A server handler gets a context that ends at the caller's deadline (err
 * `DeadlineExceeded`), when the client cancels (err `Canceled`, cause
 * {@link CallCancelledError}) and when the call finishes; a client call
 * takes its deadline from a context and is canceled when the context is.
 * grpc-js is an optional peer: this module only touches the objects grpc-js
 * gives it, and imports nothing from it.
 *
 * @example
 * ```ts
 * import { handleUnary, unaryCall } from "taproot-context/grpc";
 *
 * server.addService(proto.Greeter.service, {
 *   sayHello: handleUnary(async (ctx, call) => {
 *     const name = await unaryCall<{ name: string }>(ctx, names, "lookup", call.request);
 *     return { message: `hello ${name.name}` };
 *   }),
 * });
 * ```
 *
 * @packageDocumentation
 */

// Server calls
export {
  callContext,
  handleUnary,
  handleClientStream,
  handleServerStream,
  handleBidiStream,
  type HandlerOptions,
} from "./server.js";

// Client calls
export { callOptions, bindCall, unaryCall } from "./client.js";

// Causes and shapes
export { CallCancelledError } from "./errors.js";
export type {
  ServerCall,
  ServerWritable,
  ClientCall,
  ClientCallOptions,
  GrpcStatus,
} from "./types.js";
