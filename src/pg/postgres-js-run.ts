// The engine under contextSql and begin: one postgres.js statement under a
// context, on a connection nobody else is using, canceled on the server when
// the context ends, and never a cancel that reaches another statement.
//
// Why a connection of our own: postgres.js pipelines. A query sent behind
// another one is "cancelled" by deferring the CancelRequest until it becomes
// active, and a CancelRequest names a backend, not a statement: if the query
// ends before the request lands, it cancels whatever that connection runs
// next, someone else's query (porsager/postgres README, "Canceling queries in
// progress"; reproduced in /pg notes). So a statement that may be canceled runs
// alone on a reserved connection (`sql.reserve()`), and the connection goes
// back only once the CancelRequest's socket has closed (the server has
// signaled the backend by then) and the statement ended with 57014. Otherwise
// the connection is retired: its backend is terminated, and postgres.js opens
// a fresh one on demand.
import type { PendingQuery, Sql } from "postgres";
import { deadlineOf } from "../context.js";
import { afterFunc, DeadlineExceeded, type Context } from "../index.js";
import { postgresJsConfiguredTimeoutMs } from "./configured-timeout.js";
import {
  CLEAR_LEAKED_TIMEOUT,
  nearDeadline as deadlineNear,
  statementTimeoutFor,
} from "./statement-timeout.js";

/** A reserved connection, or the transaction scope of `sql.begin`. */
export type Runner = Pick<Sql, "unsafe"> &
  ((strings: TemplateStringsArray, ...values: never[]) => PendingQuery<never>);

/** SQLSTATE of "canceling statement due to user request" (and statement_timeout). */
const QUERY_CANCELED = "57014";

/**
 * How long after the CancelRequest's socket closed a statement may run on
 * before the caller gets ctx.err() anyway: a cancel that reached the server
 * before the statement did is lost (a few in 1,000 in the /pg probes), and
 * postgres.js sends only one. The statement then ends by itself (or at its
 * statement_timeout) and its connection is retired.
 */
const LOST_CANCEL_MS = 250;

/**
 * canceledBy returns what a canceled statement rejects with: `ctx.err()`
 * itself, so `err === ctx.err()` and `err === Canceled` hold. Why it ended
 * is `cause(ctx)`; the driver's own error is given to `onDriverError`.
 */
function canceledBy(ctx: Context): Error {
  const err = ctx.err();
  if (err === null) throw new Error("taproot: internal error: canceledBy on a live context");
  return err;
}

/** isServerError reports whether PostgreSQL itself sent `err`: the connection is still usable. */
export function isServerError(err: unknown): boolean {
  return (
    typeof err === "object" &&
    err !== null &&
    (err as { name?: unknown }).name === "PostgresError" &&
    typeof (err as { severity?: unknown }).severity === "string"
  );
}

/**
 * isConnectionError reports whether `err` says the connection itself is gone
 * (postgres.js's CONNECTION_* codes, or a socket error). Such a connection is
 * already back in postgres.js's closed queue, so it must not be released:
 * release() would put a closed connection among the open ones.
 */
export function isConnectionError(err: unknown): boolean {
  if (typeof err !== "object" || err === null || isServerError(err)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("CONNECTION_")) return true;
  return typeof (err as { syscall?: unknown }).syscall === "string";
}

/** What became of a statement's connection after it ran. */
export type Fate = "reuse" | "retire" | "gone";

/** A statement's outcome: its result or error, and the connection's fate once everything settled. */
export interface Outcome<T> {
  ok: boolean;
  value: T | undefined;
  error: unknown;
  /** Resolves once the statement, any cancel and the RESET have settled. */
  fate: Promise<Fate>;
  /** Set when the caller is answered before the statement ended (a cancel that was lost). */
  gaveUp: boolean;
}

/**
 * statementTimeoutMs is the remaining time of ctx's deadline as a
 * statement_timeout (statementTimeoutFor), or undefined when ctx has no
 * deadline; never more than the statement_timeout `sql` was configured
 * with (configured-timeout.ts). A user context whose deadline() is not a
 * Date is a TypeError naming `fn`, the function the caller called.
 */
export function statementTimeoutMs(ctx: Context, fn: string, sql: unknown): number | undefined {
  const deadline = deadlineOf(fn, ctx);
  if (deadline === undefined) return undefined;
  return Math.min(statementTimeoutFor(deadline - Date.now()), postgresJsConfiguredTimeoutMs(sql));
}

/** How long past the deadline a statement with a server deadline may run before a CancelRequest is sent. */
const DEADLINE_GRACE_MS = 50;

/**
 * timedOutAtDeadline tells a statement our statement_timeout stopped (57014)
 * at ctx's deadline: the deadline is the reason, as the context will say.
 */
export function timedOutAtDeadline(ctx: Context, error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === QUERY_CANCELED && nearDeadline(ctx);
}

/** nearDeadline tells whether ctx's deadline passed or is about to (statement-timeout.ts). */
export function nearDeadline(ctx: Context): boolean {
  if (ctx.err() === DeadlineExceeded) return true;
  // Read before by statementTimeoutMs, which refused a deadline() that is not a Date.
  return deadlineNear(deadlineOf("contextSql(ctx, sql)", ctx));
}

/**
 * clearLeakedTimeout runs an empty query on a connection whose timed
 * statement or transaction ended near its deadline, before anyone else may
 * use it: a statement timeout PostgreSQL carried over fails this query
 * instead of the next caller's (statement-timeout.ts, CLEAR_LEAKED_TIMEOUT).
 * It resolves with the connection's fate.
 */
export function clearLeakedTimeout(runner: Runner): Promise<Fate> {
  return runner.unsafe(CLEAR_LEAKED_TIMEOUT).then(
    () => "reuse",
    (error: unknown): Fate => {
      if (isConnectionError(error)) return "gone";
      return isServerError(error) && (error as { code?: unknown }).code === QUERY_CANCELED
        ? "reuse"
        : "retire";
    },
  );
}

/**
 * execute runs `build(runner)` under ctx on a connection no other caller
 * uses, and resolves when the caller may be answered: when the statement
 * settles, or (ctx done) once the cancel has been sent and the statement
 * ended or was given up on. `timeoutMs`, when set, is sent first as
 * `SET [LOCAL] statement_timeout`, and reset after (outside a transaction,
 * pipelined behind the statement). With `timeoutMs` the server enforces the
 * deadline, so at the deadline the CancelRequest waits DEADLINE_GRACE_MS for
 * the server's own timeout.
 *
 * The SET is awaited, one round trip, before the statement is sent: postgres.js
 * builds a statement only as it goes on the wire, and one it cannot build (an
 * undefined parameter, 65534+ parameters, a misused helper) fails the query
 * then active instead (connection.js execute(): errored()). Pipelined behind
 * the SET, the statement would stay queued with nothing sent for it, never
 * settle, and hand every later statement on the connection its predecessor's
 * answer. Sent alone, it rejects with postgres.js's own error.
 */
export async function execute<T>(
  ctx: Context,
  runner: Runner,
  build: (runner: Runner) => PendingQuery<never>,
  timeoutMs: number | undefined,
  local: boolean,
): Promise<Outcome<T>> {
  const preludeOk =
    timeoutMs === undefined
      ? undefined
      : await runner.unsafe(`set ${local ? "local " : ""}statement_timeout = ${timeoutMs}`).then(
          () => true,
          () => false,
        );
  const reset = (): Promise<boolean> | undefined =>
    timeoutMs === undefined || local
      ? undefined
      : runner.unsafe("reset statement_timeout").then(
          () => true,
          () => false,
        );
  // Outside a transaction the RESET is the last timed command: near the
  // deadline it may have left a statement timeout for the next caller. (In a
  // transaction, begin clears one after COMMIT or ROLLBACK.)
  const reuse = (): Promise<Fate> | Fate =>
    timeoutMs !== undefined && !local && nearDeadline(ctx) ? clearLeakedTimeout(runner) : "reuse";
  // A SET refused at the deadline (a statement timeout carried over from the
  // statement before, in a transaction) is the deadline too, even before the
  // context's own timer has run.
  const early = ctx.err() ?? (preludeOk === false && nearDeadline(ctx) ? DeadlineExceeded : null);
  if (early !== null) {
    // ctx ended during the SET: the statement is not sent.
    const resetOk = reset();
    const fate = (async (): Promise<Fate> =>
      [preludeOk ?? true, (await resetOk) ?? true].every(Boolean) ? reuse() : "retire")();
    return { ok: false, value: undefined, error: early, fate, gaveUp: false };
  }
  const statement = build(runner);
  statement.execute();
  // The prelude and the RESET are ours; their errors only decide the fate.
  const resetOk = reset();

  return new Promise<Outcome<T>>((resolve) => {
    // Set when ctx ends before the statement settled: the cancel's promise,
    // which resolves once the server has closed the CancelRequest's socket.
    let cancelClosed: Promise<unknown> | undefined;
    let settled: { ok: boolean; value: unknown } | undefined;
    let answered = false;

    const fate = async (): Promise<Fate> => {
      await statementDone;
      const sent = cancelClosed !== undefined;
      if (sent) await cancelClosed;
      const ok = [preludeOk ?? true, (await resetOk) ?? true].every(Boolean);
      const s = settled!;
      if (!s.ok && isConnectionError(s.value)) return "gone";
      if (!ok) return "retire";
      // A cancel was sent: reuse only if it was spent on this statement.
      const spent = !s.ok && (s.value as { code?: unknown }).code === QUERY_CANCELED;
      if (sent && !spent) return "retire";
      if (!s.ok && !isServerError(s.value)) {
        // postgres.js refused the statement before sending it and wrote a
        // Sync in its place. The next statement must not be pipelined behind
        // that Sync: one that also fails to build would fail the Sync's query,
        // not itself, and never settle. An empty statement of ours waits it
        // out, and, coming after the RESET, clears a leaked timeout too.
        return clearLeakedTimeout(runner);
      }
      return reuse();
    };

    const answer = (gaveUp: boolean): void => {
      if (answered) return;
      answered = true;
      const s = settled;
      // Our statement_timeout can beat the context's own timer by a few
      // milliseconds: the deadline is the reason, so report it as the context will.
      if (
        cancelClosed === undefined &&
        s !== undefined &&
        !s.ok &&
        timeoutMs !== undefined &&
        (s.value as { code?: unknown }).code === QUERY_CANCELED &&
        nearDeadline(ctx)
      ) {
        resolve({ ok: false, value: undefined, error: DeadlineExceeded, fate: fateP, gaveUp });
        return;
      }
      const outcome: Outcome<T> =
        cancelClosed === undefined && s !== undefined
          ? {
              ok: s.ok,
              value: s.ok ? (s.value as T) : undefined,
              error: s.ok ? undefined : s.value,
              fate: fateP,
              gaveUp,
            }
          : { ok: false, value: undefined, error: canceledBy(ctx), fate: fateP, gaveUp };
      resolve(outcome);
    };

    const statementDone: Promise<void> = statement.then(
      (value) => {
        settled = { ok: true, value };
        stop();
      },
      (error: unknown) => {
        settled = { ok: false, value: error };
        stop();
      },
    );
    const sendCancel = (): void => {
      if (settled !== undefined) return;
      // q.cancel() returns a Promise at run time (typed void): sent now if the
      // statement is running, when it becomes active if pipelined, or a local
      // rejection if it was never sent.
      cancelClosed = Promise.resolve(statement.cancel() as unknown).catch(() => undefined);
      void cancelClosed.then(() => {
        const timer = setTimeout(answer, LOST_CANCEL_MS, true);
        void statementDone.then(() => {
          clearTimeout(timer);
          answer(false);
        });
      });
    };
    const stop = afterFunc(ctx, () => {
      // At the deadline the server's own statement_timeout stops the statement
      // with no cancel at all; a CancelRequest sent as well could land after it
      // ended, on the RESET or the next statement. So wait out a grace first.
      if (timeoutMs !== undefined && ctx.err() === DeadlineExceeded) {
        const grace = setTimeout(sendCancel, DEADLINE_GRACE_MS);
        void statementDone.then(() => clearTimeout(grace));
      } else sendCancel();
    });
    const fateP = statementDone.then(fate);
    void statementDone.then(() => {
      if (cancelClosed === undefined) answer(false);
    });
  });
}
