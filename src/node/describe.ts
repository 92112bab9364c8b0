/**
 * describe renders a bad argument for an error message: strings quoted, then
 * the type in parentheses, as in `ms must be a number, got "100" (string)`.
 */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "string") return `${JSON.stringify(v)} (string)`;
  if (typeof v === "function") return `a function (${v.name || "anonymous"})`;
  if (typeof v === "object") {
    const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === "string" && name !== "" && name !== "Object" ? `a ${name}` : "an object";
  }
  return `${String(v)} (${typeof v})`;
}

/**
 * checkMs throws a TypeError naming `fn` unless `ms` is a number of
 * milliseconds that is not NaN and, when `positive`, above zero.
 */
export function checkMs(fn: string, param: string, ms: unknown, positive: boolean): number {
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new TypeError(`${fn}: ${param} must be a number of milliseconds, got ${describe(ms)}`);
  }
  if (positive ? !(ms > 0) : ms < 0) {
    throw new RangeError(
      `${fn}: ${param} must be ${positive ? "above zero" : "zero or more"}, got ${ms}; pass a number of milliseconds${positive ? "" : " (Infinity means no limit)"}`,
    );
  }
  return ms;
}

/**
 * checkContext throws a TypeError naming `fn` unless `ctx` looks like a
 * Context, so a missing context fails with the fix instead of a property
 * access deep inside.
 */
export function checkContext(fn: string, param: string, ctx: unknown): void {
  if (ctx === null || ctx === undefined) {
    throw new TypeError(
      `${fn}: ${param} is ${String(ctx)}; pass background() if you have no other context`,
    );
  }
  const c = ctx as { done?: unknown; err?: unknown; deadline?: unknown; value?: unknown };
  if (
    typeof c.done !== "function" ||
    typeof c.err !== "function" ||
    typeof c.deadline !== "function" ||
    typeof c.value !== "function"
  ) {
    throw new TypeError(
      `${fn}: ${param} must be a Context, got ${describe(ctx)}; pass background() if you have no other context`,
    );
  }
}
