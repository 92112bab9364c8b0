/**
 * The causes taproot records when it ends a request's context: each says why
 * the work stopped, in words a log reader understands. `ctx.err()` stays the
 * core's `Canceled` or `DeadlineExceeded`; `cause(ctx)` returns one of these.
 */

/**
 * ClientDisconnectedError is the cause of a request context canceled because
 * the client closed the connection (or reset the HTTP/2 stream, or aborted
 * the Fetch API request) before the response was finished.
 *
 * @example
 * ```ts
 * const ctx = requestContext(req, res);
 * await ctx.done();
 * if (cause(ctx) instanceof ClientDisconnectedError) log("client went away");
 * ```
 */
export class ClientDisconnectedError extends Error {
  /** The request method, e.g. `"GET"`. */
  readonly method: string;
  /** The request target as the client sent it, e.g. `"/search?q=go"`. */
  readonly url: string;

  constructor(method: string, url: string) {
    super(`client disconnected before the response to ${method} ${url} was finished`);
    this.name = "ClientDisconnectedError";
    this.method = method;
    this.url = url;
  }
}

/**
 * RequestTimeoutError is the cause of a request context whose deadline
 * passed: `ms` is the budget the request had and `source` where it came
 * from: the server's `timeout` option, a deadline header sent by the
 * caller (`connect-timeout-ms`, `grpc-timeout`), or, on `node:http`, the
 * server's own `requestTimeout` (Node answered 408 because the request's
 * body had not all arrived in time).
 *
 * @example
 * ```ts
 * const why = cause(ctx);
 * if (why instanceof RequestTimeoutError) log(`gave up after ${why.ms} ms (${why.source})`);
 * ```
 */
export class RequestTimeoutError extends Error {
  /** The request's time budget in milliseconds. */
  readonly ms: number;
  /** Where the budget came from. */
  readonly source: RequestTimeoutSource;

  constructor(ms: number, source: RequestTimeoutSource) {
    super(
      source === "timeout"
        ? `request timed out after ${ms} ms (timeout option)`
        : source === "requestTimeout"
          ? `request not received within the server's requestTimeout of ${ms} ms (node:http answered 408)`
          : `request deadline of ${ms} ms from the ${source} header exceeded`,
    );
    this.name = "RequestTimeoutError";
    this.ms = ms;
    this.source = source;
  }
}

/**
 * Where a request's time budget came from (see {@link RequestTimeoutError}).
 *
 * @example
 * ```ts
 * const fromCaller = (s: RequestTimeoutSource) => s === "connect-timeout-ms" || s === "grpc-timeout";
 * ```
 */
export type RequestTimeoutSource =
  "timeout" | "connect-timeout-ms" | "grpc-timeout" | "requestTimeout";
