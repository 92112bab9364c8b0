import type { Pool, PoolClient } from "pg";
import { afterFunc, type Context } from "../index.js";
import { checkContext } from "../validate.js";
import { checkDb, type PgClient, type PgPool } from "./pg-client.js";

const FN = "connect(ctx, pool)";

/**
 * connect checks a client out of `pool`, waiting no longer than `ctx`: when
 * `ctx` ends first it rejects with `ctx.err()`, and the client that arrives
 * later is released at once, so the pool never loses a connection
 * (pg-pool's own wait can only end by `connectionTimeoutMillis`). A `ctx`
 * already done rejects without touching the pool. Release the client as
 * usual (`client.release()`), and run its queries with {@link query} so
 * they stop with the context too.
 *
 * @example
 * ```ts
 * const client = await connect(ctx, pool);
 * try {
 *   await query(ctx, client, "select pg_advisory_lock($1)", [42]);
 *   // ...
 * } finally {
 *   client.release();
 * }
 * ```
 */
export function connect(ctx: Context, pool: Pool): Promise<PoolClient> {
  checkContext(FN, "ctx", ctx);
  checkDb(FN, pool, true);
  const err = ctx.err();
  if (err !== null) return Promise.reject(err);
  return new Promise<PoolClient>((resolve, reject) => {
    // Set when the caller has its answer: the client, an error, or ctx.err().
    let answered = false;
    const stop = afterFunc(ctx, () => {
      if (answered) return;
      answered = true;
      reject(ctx.err());
    });
    (pool as unknown as PgPool).connect((error, client, release) => {
      if (answered) {
        if (client !== undefined) release(); // too late for the caller: back to the pool
        return;
      }
      answered = true;
      stop();
      if (error !== undefined || client === undefined) reject(error);
      else resolve(client as PgClient as unknown as PoolClient);
    });
  });
}
