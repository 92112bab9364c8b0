/**
 * CallCancelledError is the cause of a server call's context canceled
 * because the client canceled the call (or its connection went away) before
 * the server had sent the status. `ctx.err()` is `Canceled`.
 *
 * @example
 * ```ts
 * await ctx.done();
 * if (cause(ctx) instanceof CallCancelledError) log(`${cause(ctx).path}: client went away`);
 * ```
 */
export class CallCancelledError extends Error {
  /** The method path, `/package.Service/Method`, or `""` if grpc-js gave none. */
  readonly path: string;

  constructor(path: string) {
    super(`client canceled the call to ${path || "a gRPC method"} before it finished`);
    this.name = "CallCancelledError";
    this.path = path;
  }
}
