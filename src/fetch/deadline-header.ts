/**
 * Deadline headers: how a caller tells the next service how much time is
 * left. Both are relative durations, so the two hosts' clocks never need to
 * agree. Incoming values come from the network: anything that does not parse
 * exactly is ignored, and a value can only shorten a request's deadline.
 */

/**
 * Connect's header: the remaining milliseconds, at most 10 digits.
 *
 * @example
 * ```ts
 * const headers = new Headers({ [CONNECT_TIMEOUT]: formatConnectTimeout(1_500) }); // "1500"
 * ```
 */
export const CONNECT_TIMEOUT = "connect-timeout-ms";
/**
 * gRPC's header: at most 8 digits and a unit (H M S m u n).
 *
 * @example
 * ```ts
 * const budget = headerBudget(undefined, request.headers.get(GRPC_TIMEOUT) ?? undefined);
 * ```
 */
export const GRPC_TIMEOUT = "grpc-timeout";

const connectPattern = /^\d{1,10}$/;
const grpcPattern = /^(\d{1,8})([HMSmun])$/;
const grpcUnitMs: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * A time budget read from the headers of an incoming request.
 *
 * @example
 * ```ts
 * const b: HeaderBudget | undefined = headerBudget("250", undefined); // { ms: 250, source: "connect-timeout-ms" }
 * ```
 */
export interface HeaderBudget {
  ms: number;
  source: "connect-timeout-ms" | "grpc-timeout";
}

type HeaderValue = string | string[] | undefined;

/**
 * headerBudget returns the smallest well-formed budget among the deadline
 * headers, or undefined when there is none. A repeated header arrives joined
 * with ", " (Node's rule for unknown headers) or as an array: every part
 * counts, and the smallest wins, so repeating a header never buys time.
 *
 * @example
 * ```ts
 * headerBudget("900", "2S"); // { ms: 900, source: "connect-timeout-ms" }
 * headerBudget("soon", undefined); // undefined: malformed values are ignored
 * ```
 */
export function headerBudget(connect: HeaderValue, grpc: HeaderValue): HeaderBudget | undefined {
  let best: HeaderBudget | undefined;
  for (const part of parts(connect)) {
    if (!connectPattern.test(part)) continue;
    const ms = Number(part);
    if (best === undefined || ms < best.ms) best = { ms, source: CONNECT_TIMEOUT };
  }
  for (const part of parts(grpc)) {
    const m = grpcPattern.exec(part);
    if (m === null) continue;
    // Round down: a budget read from the network never grows in conversion.
    const ms = Math.floor(Number(m[1]) * (grpcUnitMs[m[2] as string] as number));
    if (best === undefined || ms < best.ms) best = { ms, source: GRPC_TIMEOUT };
  }
  return best;
}

function parts(v: HeaderValue): string[] {
  if (v === undefined) return [];
  const all = Array.isArray(v) ? v.join(",") : v;
  // The common case, one short value, costs no split.
  if (!all.includes(",")) return [all.trim()];
  return all.split(",").map((s) => s.trim());
}

/**
 * formatConnectTimeout renders whole remaining milliseconds for `connect-timeout-ms`.
 *
 * @example
 * ```ts
 * formatConnectTimeout(1234.9); // "1234"
 * ```
 */
export function formatConnectTimeout(ms: number): string {
  return String(Math.min(Math.floor(ms), 9_999_999_999));
}

/**
 * formatGrpcTimeout renders remaining milliseconds for `grpc-timeout` in the
 * finest unit that fits in 8 digits, rounding down so the callee never gets
 * more time than is left.
 *
 * @example
 * ```ts
 * formatGrpcTimeout(1_500); // "1500m"
 * ```
 */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.floor(ms);
  if (whole <= 99_999_999) return `${whole}m`;
  for (const unit of ["S", "M", "H"] as const) {
    const n = Math.floor(ms / (grpcUnitMs[unit] as number));
    if (n <= 99_999_999) return `${n}${unit}`;
  }
  return "99999999H";
}
