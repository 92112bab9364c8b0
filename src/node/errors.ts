/**
 * The causes taproot/node records when it cancels a context. Each says why
 * the work stopped, in words a log reader understands; `ctx.err()` stays the
 * core's `Canceled` or `DeadlineExceeded`, and `cause(ctx)` returns one of
 * these.
 */

import { formatValue } from "../format.js";

export {
  ClientDisconnectedError,
  RequestTimeoutError,
  type RequestTimeoutSource,
} from "../fetch/errors.js";

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
            ? formatValue(why) // "<unprintable>" where String() throws (Object.create(null))
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
