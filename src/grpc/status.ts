import { Canceled, DeadlineExceeded } from "../index.js";
import { formatValue } from "../format.js";
import type { GrpcStatus } from "./types.js";

/** The gRPC status codes this module reads or sends (grpc-js's `status` enum has them all). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
} as const;

/**
 * How close to the deadline an end of the call counts as the deadline. Both
 * sides of a call run a timer of their own for the same deadline: the
 * client's cancels the stream when it fires, and grpc-js's server timer
 * sends DEADLINE_EXCEEDED; either may beat taproot's by a millisecond or two
 * (Node's timers count from the event loop's cached clock, which lags
 * Date.now()), and the client's reaches the server as a plain cancel.
 */
export const DEADLINE_SLACK_MS = 10;

/**
 * How close to its deadline a server call may be canceled by the client and
 * still read as the deadline. The server's deadline is the client's plus the
 * time the request headers took to arrive (grpc-timeout is relative), and
 * the client cancels the stream when its own deadline passes, so that cancel
 * reaches the server before the server's deadline: by 10 to 20 ms on a busy
 * loopback. A client that really gives up this close to its deadline is
 * reported as the deadline, which its budget says it nearly was.
 */
export const CANCEL_NEAR_DEADLINE_MS = 50;

/** deadlinePassed says whether `deadline` (epoch ms) is, within `slack` ms, now or past. */
export function deadlinePassed(deadline: number, slack: number = DEADLINE_SLACK_MS): boolean {
  return deadline !== Infinity && Date.now() >= deadline - slack;
}

/** epochMs reads a grpc-js deadline (a Date or epoch ms; `Infinity` for none) as epoch ms. */
export function epochMs(deadline: Date | number | undefined): number {
  if (deadline === undefined) return Infinity;
  return typeof deadline === "number" ? deadline : deadline.getTime();
}

/**
 * toStatus turns what a handler threw into the status sent to the caller:
 * the context's errors as CANCELLED and DEADLINE_EXCEEDED (what a Go server
 * sends for `context.Canceled` and `context.DeadlineExceeded`), an error
 * whose `code` is a gRPC error status, an integer from 1 to 16, as that
 * status (grpc-js reads its `details` and `metadata`), anything else as
 * UNKNOWN with its message. A `code` of 0 would report the failure as OK,
 * one past 16 is no status at all, and a DOMException's `code` is a legacy
 * DOM number (AbortError's 20, NotFoundError's 8) that only looks like one.
 */
export function toStatus(error: unknown): GrpcStatus {
  if (error === DeadlineExceeded) {
    return { code: Status.DEADLINE_EXCEEDED, details: DeadlineExceeded.message };
  }
  if (error === Canceled) return { code: Status.CANCELLED, details: Canceled.message };
  const code = (error as { code?: unknown } | null | undefined)?.code;
  if (
    typeof code === "number" &&
    Number.isInteger(code) &&
    code >= 1 &&
    code <= MAX_STATUS &&
    !isDOMException(error)
  ) {
    return error as GrpcStatus;
  }
  // A value String() cannot print (Object.create(null), a throwing toString) must not throw here:
  // the call would never get a status.
  return {
    code: Status.UNKNOWN,
    details: error instanceof Error ? error.message : formatValue(error),
  };
}

/** The last gRPC status code, UNAUTHENTICATED. */
const MAX_STATUS = 16;

function isDOMException(error: unknown): boolean {
  return typeof DOMException === "function" && error instanceof DOMException;
}
