/**
 * formatDuration prints milliseconds the way Go prints a time.Duration:
 * `1h0m0s`, `2m3.5s`, `1.5s`, `250ms`, `0.8ms`, `0s`.
 */
export function formatDuration(ms: number): string {
  let d = Math.abs(ms);
  let s = ms < 0 ? "-" : "";
  if (d === Infinity) return `${s}∞`;
  if (d < 1000) return d === 0 ? "0s" : `${s}${round(d)}ms`;
  if (d >= 3_600_000) s += `${Math.floor(d / 3_600_000)}h`;
  if (d >= 60_000) s += `${Math.floor((d % 3_600_000) / 60_000)}m`;
  d %= 60_000;
  return `${s}${round(d / 1000)}s`;
}

/** round keeps at most three decimals and no trailing zeros. */
function round(n: number): string {
  return String(+n.toFixed(3));
}

/** formatValue prints a key or value inside `WithValue(…)`: a string as itself, anything else as `String(v)`. */
export function formatValue(v: unknown): string {
  try {
    return String(v);
  } catch {
    // Object.create(null) and friends have no toString.
    return "<unprintable>";
  }
}
