import type { Client, Pool, PoolClient, QueryResult, QueryResultRow } from "pg";
import type { Context } from "../index.js";
import { checkContext } from "../validate.js";
import { checkDb, checkQuery, isPool, type PgClient, type PgPool } from "./pg-client.js";
import { runQuery } from "./run.js";

const FN = "query(ctx, db, text, values)";

/**
 * query runs `text` (with `$1`, `$2`, … bound to `values`) on `db` under
 * `ctx` and resolves with node-postgres's QueryResult. `db` is a Pool (a
 * connection is checked out for the query and released after it), a
 * PoolClient or a Client (you keep it).
 *
 * - `ctx` already done: rejects with `ctx.err()` and sends nothing.
 * - `ctx` ends while waiting for a pool connection: the wait ends, and the
 *   connection is released when it comes.
 * - `ctx` ends while the query runs: a CancelRequest stops the backend and
 *   the promise rejects with `ctx.err()` (`cause(ctx)` says why). The
 *   connection is reused only if the query ended with 57014 and is idle
 *   again with no cancel still on its way; otherwise it is destroyed (for a
 *   client you hold: ended), so a late cancel never reaches another query.
 *   With a pool the promise rejects at once; with a client you hold, once
 *   that decision is made (normally within a millisecond or two), so your
 *   next query on it is safe.
 * - `ctx` has a deadline: the remaining time goes to the server as the
 *   statement's `statement_timeout` in the same round trip, so the query
 *   stops at its deadline even if this process dies. Transaction control
 *   (BEGIN, COMMIT, ROLLBACK [TO SAVEPOINT], …) and statements in a failed
 *   transaction go without it, so a BEGIN does not cap the transaction it
 *   opens and a ROLLBACK can recover; the CancelRequest enforces theirs.
 *
 * A server error (a constraint, a syntax error) rejects with the driver's
 * error, as `pool.query` does.
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { query } from "taproot-context/pg";
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const { rows } = await query(ctx, pool, "select name from users where id = $1", [id]);
 * ```
 */
export function query<R extends QueryResultRow = QueryResultRow>(
  ctx: Context,
  db: Pool | PoolClient | Client,
  text: string,
  values?: unknown[],
): Promise<QueryResult<R>> {
  checkContext(FN, "ctx", ctx);
  checkDb(FN, db, false);
  checkQuery(FN, text, values);
  const pooled = isPool(db);
  return runQuery(
    ctx,
    pooled ? (db as unknown as PgPool) : null,
    pooled ? null : (db as unknown as PgClient),
    text,
    values,
    FN,
  ) as Promise<QueryResult<R>>;
}
