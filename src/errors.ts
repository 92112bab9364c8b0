/**
 * Creates one of the two sentinel errors. They are compared by identity
 * (`ctx.err() === Canceled`), so the stack would only point at this module:
 * it is replaced by the plain `name: message` line.
 */
function sentinel(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  e.stack = `${name}: ${message}`;
  return Object.freeze(e);
}

/**
 * Canceled is the error returned by `ctx.err()` when the context was canceled
 * by its cancel function, or by a parent that was. Its `name` is
 * `"AbortError"`, the name Web APIs give to an abort, so code that checks
 * `err.name === "AbortError"` treats it as one.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withCancel(background());
 * cancel();
 * ctx.err() === Canceled; // true
 * ```
 */
export const Canceled: Error = sentinel("AbortError", "context canceled");

/**
 * DeadlineExceeded is the error returned by `ctx.err()` when the context's
 * deadline passed. Its `name` is `"TimeoutError"`, the name
 * `AbortSignal.timeout()` uses, so code written for Web APIs recognizes it.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withTimeout(background(), 0);
 * ctx.err() === DeadlineExceeded; // true
 * cancel();
 * ```
 */
export const DeadlineExceeded: Error = sentinel("TimeoutError", "context deadline exceeded");
