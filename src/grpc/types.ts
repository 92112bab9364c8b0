/**
 * The shapes of `@grpc/grpc-js` objects that taproot-context/grpc touches,
 * written out structurally so that this module compiles and loads without
 * grpc-js installed: a call object of grpc-js 1.x satisfies them as is.
 */

/**
 * ServerCall is what every grpc-js server call object has in common
 * (`ServerUnaryCall`, `ServerReadableStream`, `ServerWritableStream`,
 * `ServerDuplexStream`): its deadline and its `"cancelled"` event.
 *
 * @example
 * ```ts
 * function remaining(call: ServerCall): number {
 *   const d = call.getDeadline();
 *   return (d instanceof Date ? d.getTime() : d) - Date.now();
 * }
 * ```
 */
export interface ServerCall {
  /** The caller's deadline: a Date or epoch ms; `Infinity` when the caller set none. */
  getDeadline(): Date | number;
  /** Whether grpc-js has seen the call end (sent its status, or lost the client). */
  readonly cancelled: boolean;
  /** The method path, `/package.Service/Method`. */
  getPath?(): string;
  on(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/**
 * ServerWritable is a server call that sends a stream of responses
 * (`ServerWritableStream`, `ServerDuplexStream`).
 *
 * @example
 * ```ts
 * function finish(call: ServerWritable): void {
 *   call.end();
 * }
 * ```
 */
export interface ServerWritable extends ServerCall {
  end(): unknown;
  emit(event: "error", error: unknown): boolean;
  readonly destroyed: boolean;
}

/**
 * GrpcStatus is the part of a grpc-js `ServiceError` (or `StatusObject`)
 * that carries the outcome: the status code and its details.
 *
 * @example
 * ```ts
 * const notFound: GrpcStatus = { code: 5, details: "no such user" };
 * ```
 */
export interface GrpcStatus {
  code: number;
  details?: string;
}

/**
 * ClientCall is what every grpc-js client call object has in common
 * (`ClientUnaryCall`, `ClientReadableStream`, `ClientWritableStream`,
 * `ClientDuplexStream`): `cancel()` and the `"status"` event that ends it.
 *
 * @example
 * ```ts
 * function abandon(call: ClientCall): void {
 *   call.cancel();
 * }
 * ```
 */
export interface ClientCall {
  cancel(): void;
  on(event: "status", listener: (status: GrpcStatus) => void): unknown;
  removeListener(event: "status", listener: (status: GrpcStatus) => void): unknown;
}

/**
 * ClientCallOptions is the part of grpc-js's `CallOptions` that a context
 * decides: the deadline. Other options pass through untouched.
 *
 * @example
 * ```ts
 * const options: ClientCallOptions = { deadline: Date.now() + 1_000 };
 * ```
 */
export interface ClientCallOptions {
  deadline?: Date | number;
  [option: string]: unknown;
}
