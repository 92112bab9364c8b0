/**
 * taproot: Go's `context` package for TypeScript.
 *
 * A context carries a cancellation signal, a deadline and request-scoped
 * values down a call path. Contexts form a tree: {@link background} is the
 * root; `withCancel`, `withTimeout`, `withDeadline`, `withSignal` and
 * `withValue` derive children; canceling a context cancels its whole
 * subtree, synchronously, and never its parent. Every context has an
 * `AbortSignal`, so it works with any API that takes a `signal`.
 *
 * Conventions (each checked by a rule of `taproot-context/eslint`):
 * - A function that does I/O or waits takes a context as its first
 *   parameter, named `ctx` (`taproot/context-first`), and passes it on to
 *   what it calls, including APIs that take a `signal`
 *   (`taproot/require-signal`); it does not start a new root
 *   (`taproot/no-detached-root`).
 * - Never keep a context in a class field or a long-lived object: pass it
 *   along each call (`taproot/no-stored-context`).
 * - Never pass `null` or `undefined` as a context; pass `background()` if
 *   you have no other (`taproot/no-nullish-context`), and `todo()` where the
 *   wiring is still to be written (`taproot/no-todo` lists those).
 * - Call every cancel function on every path, or declare it with `using`
 *   (`taproot/lost-cancel`).
 * - Values are for request-scoped data only, under keys made with
 *   `createKey` (`taproot/typed-keys`); never grow a context in a loop
 *   (`taproot/no-context-growth-in-loop`).
 *
 * @example
 * ```ts
 * import * as context from "taproot-context";
 *
 * const [ctx, cancel] = context.withTimeout(context.background(), 50);
 * try {
 *   await context.sleep(ctx, 1_000);
 * } catch (err) {
 *   console.log(err === context.DeadlineExceeded); // true
 * } finally {
 *   cancel();
 * }
 * ```
 *
 * @packageDocumentation
 */

// The interface
export type { Context } from "./context.js";

// Roots
export { background, todo } from "./background.js";

// Derivation
export type { CancelFunc, CancelCauseFunc } from "./cancel.js";
export { withCancel, withCancelCause, cause } from "./cancel.js";
export { withDeadline, withDeadlineCause, withTimeout, withTimeoutCause } from "./deadline.js";
export { withValue } from "./value.js";
export { withoutCancel } from "./without-cancel.js";
export { afterFunc } from "./after-func.js";

// Errors and keys
export { Canceled, DeadlineExceeded } from "./errors.js";
export type { Key } from "./key.js";
export { createKey } from "./key.js";

// Signals and timers
export { withSignal } from "./signal.js";
export { sleep, ticker } from "./timers.js";

// Task groups
export type { Group, GroupOptions, Task } from "./group.js";
export { group } from "./group.js";
