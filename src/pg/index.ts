/**
 * taproot-context/pg: PostgreSQL under a context. Queries stop on the server
 * when the context ends (a CancelRequest for that backend), the context's
 * deadline is enforced by the server too (`statement_timeout`), a pool
 * checkout waits no longer than the context, and a transaction rolls back
 * when the context ends. For node-postgres (`pg` 8 with `pg-pool`, optional
 * peer dependencies: pass your own Pool or Client; nothing of `pg` is
 * imported at run time).
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { query } from "taproot-context/pg";
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const { rows } = await query(ctx, pool, "select now() as now");
 * ```
 *
 * @module
 */

// node-postgres
export { query } from "./query.js";
export { connect } from "./connect.js";
export { transaction } from "./transaction.js";
export { cancelChannel } from "./run.js";
export type { ContextCursor } from "./stream.js";
export { stream, cursor } from "./stream.js";

// postgres.js (`postgres` 3, optional peer: pass your own `sql`)
export { contextSql, type ContextSql, type PostgresSql } from "./postgres-js.js";
export { begin } from "./postgres-js-begin.js";
