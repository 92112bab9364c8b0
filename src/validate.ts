import type { Context } from "./context.js";
import { BaseCtx } from "./context.js";

const FIX = "pass background() if you have no other context";

/**
 * describeValue prints a bad argument for an error message: `"100" (string)`,
 * `5 (number)`, `null`, `a function (handler)`, `a Map`, `an object`.
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "string") return `${JSON.stringify(value)} (string)`;
  if (typeof value === "function") return `a function (${value.name || "anonymous"})`;
  if (typeof value === "object") {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === "string" && name !== "" && name !== "Object" ? `a ${name}` : "an object";
  }
  return `${String(value)} (${typeof value})`;
}

/**
 * checkContext throws a TypeError naming `fn` (the function the user called,
 * with its parameter list) when `ctx` is not a Context. Our own contexts pass
 * with one instanceof check.
 */
export function checkContext(fn: string, param: string, ctx: unknown): asserts ctx is Context {
  if (ctx instanceof BaseCtx) return;
  if (ctx === null || ctx === undefined) {
    throw new TypeError(`${fn}: ${param} is ${String(ctx)}; ${FIX}`);
  }
  if (!isContext(ctx)) {
    throw new TypeError(`${fn}: ${param} must be a Context, got ${describeValue(ctx)}; ${FIX}`);
  }
}

/** isContext tells whether value has the methods of a Context: one of ours, or a user's own. */
export function isContext(value: unknown): value is Context {
  if (value instanceof BaseCtx) return true;
  const c = value as Partial<Record<keyof Context, unknown>> | null;
  return (
    typeof value === "object" &&
    c !== null &&
    typeof c.done === "function" &&
    typeof c.err === "function" &&
    typeof c.value === "function" &&
    typeof c.deadline === "function"
  );
}

/** checkNumber throws a TypeError naming `fn` when `n` is not a number, or is NaN. */
export function checkNumber(fn: string, n: unknown, param: string): asserts n is number {
  if (typeof n !== "number" || n !== n) {
    throw new TypeError(
      `${fn}: ${param} must be a number of milliseconds (Infinity for no limit), got ${describeValue(n)}`,
    );
  }
}

/**
 * timeOf returns `d.getTime()` if d has a getTime method, else undefined.
 * Duck-typed, so that a Date from another realm (an iframe, a vm context),
 * which fails instanceof, passes.
 */
export function timeOf(d: unknown): unknown {
  const getTime = (d as { getTime?: unknown } | null | undefined)?.getTime;
  return typeof getTime === "function" ? getTime.call(d) : undefined;
}

/** toEpochMs turns a deadline (Date or epoch ms) into epoch ms, or throws a TypeError naming `fn`. */
export function toEpochMs(fn: string, d: unknown): number {
  const t = typeof d === "number" ? d : timeOf(d);
  if (typeof t !== "number" || t !== t) {
    throw new TypeError(
      `${fn}: d must be a valid Date or epoch milliseconds, got ${t !== t && d === d ? "an invalid Date" : describeValue(d)}`,
    );
  }
  return t;
}

/**
 * checkMs throws a TypeError naming `fn` unless `ms` is a number of
 * milliseconds that is not NaN, and a RangeError unless it is above zero
 * (`positive`) or at least zero.
 */
export function checkMs(fn: string, param: string, ms: unknown, positive: boolean): number {
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new TypeError(
      `${fn}: ${param} must be a number of milliseconds, got ${describeValue(ms)}`,
    );
  }
  if (positive ? !(ms > 0) : ms < 0) {
    throw new RangeError(
      `${fn}: ${param} must be ${positive ? "above zero" : "zero or more"}, got ${ms}; pass a number of milliseconds${positive ? "" : " (Infinity means no limit)"}`,
    );
  }
  return ms;
}

/**
 * checkOptions throws a TypeError naming `fn` unless `options` is undefined
 * or an object: a number, a string or `null` given as options is a mistake
 * (often a swapped argument), not a request for the defaults.
 */
export function checkOptions<T extends object>(
  fn: string,
  options: T | undefined,
  param = "options",
): T | undefined {
  if (options === undefined || (typeof options === "object" && options !== null)) return options;
  throw new TypeError(
    `${fn}: ${param} must be an object, got ${describeValue(options)}; leave it out for the defaults`,
  );
}
