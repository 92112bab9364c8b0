/**
 * The causes taproot/node records when it cancels a context. Each says why
 * the work stopped, in words a log reader understands; `ctx.err()` stays the
 * core's `Canceled` or `DeadlineExceeded`, and `cause(ctx)` returns one of
 * these.
 */

/**
 * ClientDisconnectedError is the cause of a request context canceled because
 * the client closed the connection (or reset the HTTP/2 stream) before the
 * response was finished.
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
  /** The request target, e.g. `"/search?q=go"`. */
  readonly url: string;

  constructor(method: string, url: string) {
    super(`client disconnected before the response to ${method} ${url} was finished`);
    this.name = "ClientDisconnectedError";
    this.method = method;
    this.url = url;
  }
}

/**
 * ShutdownError is the cause of a request context canceled because the server
 * shut down before the request finished, after the grace period of
 * `shutdown(ctx)` ran out. `signal` names the process signal behind the
 * shutdown when there was one; `cause` is the base context's cause.
 *
 * @example
 * ```ts
 * if (cause(ctx) instanceof ShutdownError) res.writeHead(503).end("shutting down");
 * ```
 */
export class ShutdownError extends Error {
  /** The signal that started the shutdown (`"SIGTERM"`), or undefined. */
  readonly signal: string | undefined;

  constructor(why?: unknown) {
    const signal = why instanceof SignalError ? why.signal : undefined;
    const detail =
      signal !== undefined
        ? `received ${signal}`
        : why instanceof Error
          ? why.message
          : why !== undefined
            ? String(why)
            : undefined;
    super(
      detail === undefined ? "server shut down" : `server shut down (${detail})`,
      why === undefined ? undefined : { cause: why },
    );
    this.name = "ShutdownError";
    this.signal = signal;
  }
}

/**
 * RequestTimeoutError is the cause of a request context whose deadline
 * passed: `ms` is the budget the request had and `source` where it came
 * from: the server's `timeout` option or a deadline header sent by the
 * caller (`connect-timeout-ms`, `grpc-timeout`).
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
  readonly source: "timeout" | "connect-timeout-ms" | "grpc-timeout";

  constructor(ms: number, source: "timeout" | "connect-timeout-ms" | "grpc-timeout") {
    super(
      source === "timeout"
        ? `request timed out after ${ms} ms (timeout option)`
        : `request deadline of ${ms} ms from the ${source} header exceeded`,
    );
    this.name = "RequestTimeoutError";
    this.ms = ms;
    this.source = source;
  }
}

/**
 * SignalError is the cause of a context canceled by {@link signalContext}:
 * the process received `signal`.
 *
 * @example
 * ```ts
 * const [ctx, stop] = signalContext(background());
 * await ctx.done();
 * stop();
 * console.log(String(cause(ctx))); // "SignalError: received SIGTERM"
 * ```
 */
export class SignalError extends Error {
  /** The signal's name, e.g. `"SIGINT"`. */
  readonly signal: string;

  constructor(signal: string) {
    super(`received ${signal}`);
    this.name = "SignalError";
    this.signal = signal;
  }
}
