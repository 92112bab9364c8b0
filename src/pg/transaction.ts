import type { Pool, PoolClient } from "pg";
import { deadlineOf } from "../context.js";
import { afterFunc, withCancel, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";
import { connect } from "./connect.js";
import { checkDb, guardErrors, transactionStatus, type PgClient } from "./pg-client.js";
import { clearLeakedTimeout, runQuery, running } from "./run.js";
import { nearDeadline } from "./statement-timeout.js";

const FN = "transaction(ctx, pool, fn)";

/** How long ROLLBACK may take before the connection is destroyed instead (the server rolls back when it goes). */
const ROLLBACK_TIMEOUT_MS = 5_000;

/**
 * transaction checks a client out of `pool` (waiting no longer than `ctx`),
 * sends BEGIN, calls `fn(ctx, client)`, and sends COMMIT when `fn`
 * resolves; it resolves with `fn`'s value once COMMIT succeeded. It rolls
 * back when `fn` throws (rejecting with that error) or when `ctx` ends
 * (rejecting with `ctx.err()`): at once if no query is running, even while
 * `fn` still runs, so the connection is never left idle in a transaction.
 * When ROLLBACK cannot run (the connection was destroyed by a cancel, or it
 * hangs), the connection is destroyed and the server rolls back. Either way
 * the client goes back to the pool (or away) before the promise settles.
 *
 * Run `fn`'s statements with {@link query} on the `ctx` and `client` it is
 * given: each is canceled with the context, and each sets
 * `statement_timeout` (`SET LOCAL`) to the time left before the deadline.
 * The `ctx` given to `fn` ends when the transaction does, so a statement
 * started after it is refused. COMMIT itself is never canceled: once sent,
 * its outcome is what the promise reports (a COMMIT answered with ROLLBACK,
 * because a statement failed and `fn` caught it, rejects).
 *
 * @example
 * ```ts
 * const id = await transaction(ctx, pool, async (ctx, client) => {
 *   const { rows } = await query(ctx, client, "insert into jobs (body) values ($1) returning id", [body]);
 *   await query(ctx, client, "update stats set queued = queued + 1");
 *   return rows[0].id;
 * });
 * ```
 */
export async function transaction<T>(
  ctx: Context,
  pool: Pool,
  fn: (ctx: Context, client: PoolClient) => Promise<T>,
): Promise<T> {
  checkContext(FN, "ctx", ctx);
  checkDb(FN, pool, true);
  if (typeof fn !== "function") {
    throw new TypeError(
      `${FN}: fn must be an async function (ctx, client) => …, got ${describeValue(fn)}`,
    );
  }
  const deadline = deadlineOf(FN, ctx);
  const client = await connect(ctx, pool);
  const pg = client as unknown as PgClient;
  // Every way out gives the connection back through this, which stops guarding it.
  const release = guardErrors(pg, (error) => client.release(error));
  const [txCtx, cancel] = withCancel(ctx);
  // Set once ROLLBACK was sent (or the connection destroyed); the promise says whether it worked.
  let rollingBack: Promise<boolean> | undefined;
  const rollback = () => (rollingBack ??= rollBack(pg, deadline));
  // The context ending while fn dawdles between statements: roll back now.
  const stopEarly = afterFunc(ctx, () => {
    rollback();
  });
  let value: T;
  try {
    await runQuery(txCtx, null, pg, "BEGIN", undefined, FN, false);
    value = await fn(txCtx, client);
    const err = ctx.err();
    if (err !== null) throw err;
  } catch (error) {
    stopEarly();
    cancel();
    const clean = await rollback();
    release(clean ? undefined : new Error("taproot: transaction connection destroyed"));
    throw ctx.err() ?? error;
  }
  // false: the context ended in the instant since the check, and the early rollback is on its way.
  const early = !stopEarly();
  cancel(); // fn's context ends with the transaction
  if (early) {
    const clean = await rollback();
    release(clean ? undefined : new Error("taproot: transaction connection destroyed"));
    throw ctx.err();
  }
  let result: { command?: string };
  try {
    result = (await simple(pg, "COMMIT")) as { command?: string };
  } catch (error) {
    release(error as Error);
    throw error;
  }
  if (result.command === "ROLLBACK") {
    // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not an error.
    release();
    throw new Error(
      `${FN}: the transaction was rolled back, not committed: a statement in fn failed (its error was caught); ` +
        "let the error propagate, or use a savepoint",
    );
  }
  if (transactionStatus(pg) !== "I") {
    release(new Error("taproot: connection not idle after COMMIT"));
  } else if (nearDeadline(deadline) && !(await clearLeakedTimeout(pg))) {
    // COMMIT ran under the transaction's SET LOCAL statement_timeout.
    release(new Error("taproot: connection destroyed after COMMIT"));
  } else {
    release();
  }
  return value;
}

/**
 * rollBack waits for our queries still running on the client (they are being
 * canceled with the context), then sends ROLLBACK. It resolves true when the
 * connection is idle and out of any transaction, false when it was or must be
 * destroyed. Near `deadline`, ROLLBACK (under the transaction's SET LOCAL
 * statement_timeout) may leave a statement timeout behind, which is cleared
 * before the connection goes back.
 */
async function rollBack(client: PgClient, deadline: number | undefined): Promise<boolean> {
  const pending = running.get(client);
  if (pending !== undefined && pending.size > 0) await Promise.allSettled([...pending]);
  if (client._ending === true || client._queryable === false) return false;
  try {
    await simple(client, "ROLLBACK", ROLLBACK_TIMEOUT_MS);
  } catch {
    await client.end().catch(() => {});
    return false;
  }
  if (transactionStatus(client) !== "I" && transactionStatus(client) !== null) {
    await client.end().catch(() => {});
    return false;
  }
  return !nearDeadline(deadline) || clearLeakedTimeout(client);
}

/** simple sends a statement outside any context (COMMIT, ROLLBACK); with `timeoutMs`, a hang ends the client. */
function simple(client: PgClient, sql: string, timeoutMs?: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            client.end().catch(() => {});
            reject(new Error(`taproot: ${sql} did not finish within ${timeoutMs} ms`));
          }, timeoutMs);
    client.query(sql, undefined, (error, result) => {
      if (timer !== undefined) clearTimeout(timer);
      if (error !== null) reject(error);
      else resolve(result);
    });
  });
}
