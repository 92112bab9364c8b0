// The statement_timeout a connection was opened with, as its driver's options
// set it. A deadline's prefix sends the smaller of it and the time left: a
// deadline tightens the bound the application configured, never lifts it.
//
// Only the driver's own option is known here. A statement_timeout from the
// server's configuration, `ALTER ROLE … SET` or `ALTER DATABASE … SET`, or a
// `SET` run on the connection, is not: reading it would take a round trip
// per statement (docs/pg.md says so).

/** No statement_timeout configured: any deadline's time left is smaller. */
const NONE = Infinity;

/** The part of a node-postgres client that holds its connection options (pg's ConnectionParameters). */
interface WithConnectionParameters {
  connectionParameters?: { statement_timeout?: unknown };
}

/**
 * pgConfiguredTimeoutMs returns the statement_timeout (ms) a node-postgres
 * client sends when it connects (its `statement_timeout` option, or the
 * connection string's), or Infinity when none. pg sends
 * `String(parseInt(value, 10))` for a truthy value, so that is the value
 * the server has: `"5s"` is 5 ms there, as here.
 */
export function pgConfiguredTimeoutMs(client: unknown): number {
  const value = (client as WithConnectionParameters).connectionParameters?.statement_timeout;
  if (!value) return NONE;
  const ms = Number.parseInt(String(value), 10);
  return ms > 0 ? ms : NONE;
}

/** PostgreSQL's units of time for a setting, in ms (guc.c: us, ms, s, min, h, d; ms when none). */
const UNIT_MS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A time setting as PostgreSQL reads one: a number, then optionally a unit. */
const TIME_SETTING = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|ms|s|min|h|d)?\s*$/;

/**
 * postgresJsConfiguredTimeoutMs returns the statement_timeout (ms) a
 * postgres.js client sends when it connects (`connection: {
 * statement_timeout }` in its options, or the connection string's query),
 * or Infinity when none. postgres.js sends the value as it is, so it is read
 * as PostgreSQL reads it: `300`, `"300"`, `"2s"`, `"1min"`. A value the
 * server would refuse never opens a connection; here it counts as none.
 */
export function postgresJsConfiguredTimeoutMs(sql: unknown): number {
  const options = (sql as { options?: { connection?: { statement_timeout?: unknown } } }).options;
  const value = options?.connection?.statement_timeout;
  const ms = typeof value === "number" ? value : typeof value === "string" ? settingMs(value) : NaN;
  // PostgreSQL rounds to whole ms, a number sent as text too (0.4 is 0); 0 is no limit.
  const rounded = Math.round(ms);
  return rounded > 0 ? rounded : NONE;
}

/** settingMs reads a time setting as PostgreSQL does, in ms; NaN for one it would refuse. */
function settingMs(value: string): number {
  const match = TIME_SETTING.exec(value);
  if (match === null) return NaN;
  return Number(match[1]) * (UNIT_MS[match[2] ?? "ms"] as number);
}
