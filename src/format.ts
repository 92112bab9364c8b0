/**
 * formatDuration prints milliseconds the way Go prints a time.Duration:
 * `1h2m3.5s`, `1.5s`, `250ms`, `800µs`, `0s`.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (!Number.isFinite(ms)) return ms > 0 ? "∞" : "-∞";
  const sign = ms < 0 ? "-" : "";
  const d = Math.abs(ms);
  if (d < 1) return `${sign}${trim((d * 1000).toFixed(3))}µs`;
  if (d < 1000) return `${sign}${trim(d.toFixed(3))}ms`;
  const h = Math.floor(d / 3_600_000);
  const m = Math.floor((d % 3_600_000) / 60_000);
  const s = `${trim(((d % 60_000) / 1000).toFixed(3))}s`;
  if (h > 0) return `${sign}${h}h${m}m${s}`;
  if (m > 0) return `${sign}${m}m${s}`;
  return `${sign}${s}`;
}

function trim(fixed: string): string {
  return fixed.includes(".") ? fixed.replace(/0+$/, "").replace(/\.$/, "") : fixed;
}

/** formatValue prints a key or value inside `WithValue(…)`: a string as itself, anything else as `String(v)`. */
export function formatValue(v: unknown): string {
  if (typeof v === "string") return v;
  try {
    return String(v);
  } catch {
    // Object.create(null) and friends have no toString.
    return "<unprintable>";
  }
}
