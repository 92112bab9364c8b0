import type { Context } from "./context.js";
import { Node } from "./context.js";
import { describe } from "./key.js";

const FIX = "pass background() if you have no other context";

/**
 * checkContext throws a TypeError naming `fn` (the function the user called,
 * with its parameter list) when `ctx` is not a Context. Our own contexts pass
 * with one instanceof check.
 */
export function checkContext(fn: string, ctx: unknown, param = "parent"): asserts ctx is Context {
  if (ctx instanceof Node) return;
  if (ctx === null || ctx === undefined) {
    throw new TypeError(`${fn}: ${param} is ${String(ctx)}; ${FIX}`);
  }
  const c = ctx as Partial<Record<keyof Context, unknown>>;
  if (
    typeof ctx !== "object" ||
    typeof c.done !== "function" ||
    typeof c.err !== "function" ||
    typeof c.value !== "function" ||
    typeof c.deadline !== "function"
  ) {
    throw new TypeError(`${fn}: ${param} must be a Context, got ${describe(ctx)}; ${FIX}`);
  }
}

/** checkNumber throws a TypeError naming `fn` when `n` is not a number, or is NaN. */
export function checkNumber(fn: string, n: unknown, param: string): asserts n is number {
  if (typeof n !== "number" || n !== n) {
    throw new TypeError(
      `${fn}: ${param} must be a number of milliseconds (Infinity for no limit), got ${describe(n)}`,
    );
  }
}

/** toEpochMs turns a deadline (Date or epoch ms) into epoch ms, or throws a TypeError naming `fn`. */
export function toEpochMs(fn: string, d: unknown): number {
  const t = d instanceof Date ? d.getTime() : d;
  if (typeof t !== "number" || t !== t) {
    throw new TypeError(
      `${fn}: d must be a valid Date or epoch milliseconds, got ${d instanceof Date ? "an invalid Date" : describe(d)}`,
    );
  }
  return t;
}
