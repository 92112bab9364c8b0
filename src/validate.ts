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

/** checkNumber throws a TypeError naming `fn` when `n` is not a number or is NaN. */
export function checkNumber(fn: string, n: unknown, param: string): asserts n is number {
  if (typeof n !== "number") {
    throw new TypeError(`${fn}: ${param} must be a number, got ${describe(n)}`);
  }
  if (Number.isNaN(n)) {
    throw new TypeError(
      `${fn}: ${param} is NaN; pass a number of milliseconds (Infinity means no limit)`,
    );
  }
}

/** toEpochMs turns a deadline (Date or epoch ms) into epoch ms, or throws a TypeError naming `fn`. */
export function toEpochMs(fn: string, d: unknown): number {
  const t = d instanceof Date ? d.getTime() : d;
  if (typeof t !== "number") {
    throw new TypeError(`${fn}: d must be a Date or epoch milliseconds, got ${describe(d)}`);
  }
  if (Number.isNaN(t)) {
    throw new TypeError(
      `${fn}: d is ${d instanceof Date ? "an invalid Date" : "NaN"}; pass a valid Date or epoch milliseconds`,
    );
  }
  return t;
}
