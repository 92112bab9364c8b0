import { constants } from "node:os";
import { withCancelCause, type CancelFunc, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";
import { SignalError } from "./errors.js";

/** Signals a process can receive but never handle: Node refuses listeners for them. */
const uncatchable = new Set(["SIGKILL", "SIGSTOP"]);

/**
 * signalContext returns a child of `parent` that is canceled when the process
 * receives one of `signals` (default SIGINT and SIGTERM), with a
 * {@link SignalError} naming the signal as its cause, and `stop`, which
 * cancels it and removes the handlers. It is the counterpart of Go's
 * `signal.NotifyContext`.
 *
 * While the handlers are installed, the signals no longer end the process.
 * Call `stop()` as soon as the context is done: a second signal then behaves
 * as Node's default and ends the process, which is how a user forces a stuck
 * shutdown. `stop` is idempotent and Disposable.
 *
 * @example
 * ```ts
 * const [ctx, stop] = signalContext(background());
 * const worker = every(ctx, 1_000, pollQueue);
 * await ctx.done();
 * stop(); // a second Ctrl-C now exits at once
 * console.log(`shutting down: ${(cause(ctx) as Error).message}`); // "received SIGINT"
 * await worker;
 * ```
 */
export function signalContext(
  parent: Context,
  signals: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM"],
): [Context, CancelFunc] {
  const fn = "signalContext(parent, signals)";
  checkContext(fn, "parent", parent);
  if (!Array.isArray(signals) || signals.length === 0) {
    throw new TypeError(
      `${fn}: signals must be a non-empty array of signal names such as ["SIGINT", "SIGTERM"], got ${describeValue(signals)}`,
    );
  }
  for (const s of signals) {
    if (typeof s !== "string" || !(s in constants.signals)) {
      throw new TypeError(
        `${fn}: ${describeValue(s)} is not a signal name; use names such as "SIGINT" or "SIGTERM"`,
      );
    }
    if (uncatchable.has(s)) {
      throw new TypeError(`${fn}: ${s} cannot be caught by any process; use "SIGTERM" instead`);
    }
  }
  const [ctx, cancel] = withCancelCause(parent);
  const unique = [...new Set(signals)];
  const onSignal = (signal: NodeJS.Signals): void => cancel(new SignalError(signal));
  for (const s of unique) process.on(s, onSignal);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    for (const s of unique) process.off(s, onSignal);
    cancel();
  };
  return [ctx, Object.assign(stop, { [Symbol.dispose]: stop })];
}
