/**
 * Reading one context's facts for a tree snapshot: never throwing for what a
 * user's own Context returns, and never leaving a rejection of its done()
 * unhandled.
 */
import type { Context } from "./context.js";
import { cause } from "./cancel.js";

/** safeDeadline reads a deadline, ignoring what a user's context returns that is not a valid Date: a snapshot never throws for it. */
export function safeDeadline(ctx: Context): number | undefined {
  try {
    const ms: unknown = (ctx.deadline() as { getTime?: () => unknown } | undefined)?.getTime?.();
    return typeof ms === "number" && ms === ms ? ms : undefined;
  } catch {
    return undefined;
  }
}

/**
 * safeState returns err() (its message, once done) and cause(); a user's
 * context whose err() throws shows as done, with what it threw as cause,
 * the way its children see it.
 */
export function safeState(ctx: Context): [{ message?: unknown } | null, unknown] {
  let err: Error | null;
  try {
    err = ctx.err();
  } catch (thrown) {
    return [{ message: "err() threw" }, thrown];
  }
  if (err === null) return [null, null];
  try {
    return [err, cause(ctx)];
  } catch (thrown) {
    return [err, thrown];
  }
}

/**
 * userDone calls a user's done() to learn whether it can be canceled. A
 * promise it returns gets a handler, so that one which rejects is not
 * reported as unhandled because a snapshot looked at it.
 */
export function userDone(ctx: Context): unknown {
  let d: unknown;
  try {
    d = ctx.done();
  } catch {
    return null;
  }
  if (typeof (d as Promise<void> | null)?.then === "function") {
    (d as Promise<void>).then(undefined, () => {});
  }
  return d === undefined ? null : d;
}

export function printableDate(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms}ms since the epoch`;
}

export function safeString(ctx: Context): string {
  try {
    return String(ctx);
  } catch {
    return "<unprintable context>";
  }
}

/** printValue prints a cause: an Error as `Name: message`, anything else as String(v). */
export function printValue(v: unknown): string {
  try {
    if (v instanceof Error) return v.message === "" ? v.name : `${v.name}: ${v.message}`;
    return typeof v === "string" ? v : String(v);
  } catch {
    return "<unprintable>";
  }
}
