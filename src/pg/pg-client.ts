// What taproot/pg reads of node-postgres's objects. The app passes its own
// Pool and Client; this module never imports `pg` at run time, and reads
// only what pg 8 has had for years (processID/secretKey, connection.stream,
// readyForQuery, `Client.Query`, pool.ending).
import type { Socket } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { describeValue } from "../validate.js";
import type { CancelTarget } from "./cancel-request.js";

/** node-postgres's Client (and PoolClient), as far as taproot/pg uses it. */
export interface PgClient {
  query(
    query: unknown,
    values?: unknown,
    callback?: (error: Error | null, result: unknown) => void,
  ): unknown;
  end(): Promise<void>;
  release?: (error?: Error | boolean) => void;
  processID: number | null;
  secretKey: number | null;
  host: string;
  port: number;
  ssl: boolean | ConnectionOptions;
  sslNegotiation?: string;
  readyForQuery: boolean;
  connection: PgConnection;
  getTransactionStatus?(): string | null;
  /** pg's own flags: `_ending` once end() was called, `_queryable` false after a socket error. */
  _ending?: boolean;
  _queryable?: boolean;
}

interface PgConnection {
  stream: Socket;
  once(event: string, listener: () => void): unknown;
  removeListener(event: string, listener: () => void): unknown;
}

/**
 * guardErrors keeps a client that taproot checked out of a pool from
 * crashing the process while taproot holds it. pg-pool stops listening for a
 * client's 'error' once it is checked out, and node-postgres emits one when
 * the connection dies (its backend terminated, the server gone): with no
 * listener, an uncaught exception. The same error reaches the query running
 * on the client, whose failure releases the client with it, so the pool
 * drops it; the listener has nothing else to do. Returns the release to call
 * instead of `release`: it stops listening first.
 */
export function guardErrors(
  client: PgClient,
  release: (error?: Error) => void,
): (error?: Error) => void {
  const events = client as unknown as {
    on(event: "error", listener: () => void): unknown;
    removeListener(event: "error", listener: () => void): unknown;
  };
  events.on("error", ignoreError);
  return (error) => {
    events.removeListener("error", ignoreError);
    release(error);
  };
}

/** ignoreError is the listener of guardErrors: the error is the running query's to report. */
function ignoreError(): void {}

/**
 * dequeue takes `submitted` (a Query or a cursor handed to client.query())
 * out of the client's queue, where it waits behind another query on that
 * client, and returns whether it was there. One that is not there is
 * running, or on the wire already (pg's pipeline), or was never queued.
 */
export function dequeue(client: PgClient, submitted: unknown): boolean {
  const queue = (client as PgClient & { _queryQueue?: unknown[] })._queryQueue;
  const at = Array.isArray(queue) ? queue.indexOf(submitted) : -1;
  if (at === -1) return false;
  queue!.splice(at, 1);
  return true;
}

/** pg-pool's Pool, as far as taproot/pg uses it. */
export interface PgPool {
  connect(
    callback: (
      error: Error | undefined,
      client: PgClient | undefined,
      release: (e?: Error) => void,
    ) => void,
  ): void;
  query(text: string, values?: unknown[]): Promise<unknown>;
  ending: boolean;
  ended?: boolean;
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/** isPool tells a pg-pool Pool from a client: it has the counts and no backend key. */
export function isPool(db: unknown): db is PgPool {
  const p = db as Partial<PgPool> | null;
  return (
    typeof db === "object" &&
    p !== null &&
    typeof p.connect === "function" &&
    typeof p.query === "function" &&
    typeof p.totalCount === "number" &&
    typeof p.waitingCount === "number"
  );
}

/** isClient tells a node-postgres Client or PoolClient: a query method and a connection with a stream. */
export function isClient(db: unknown): db is PgClient {
  const c = db as Partial<PgClient> | null;
  return (
    typeof db === "object" &&
    c !== null &&
    typeof c.query === "function" &&
    typeof c.end === "function" &&
    typeof c.connection === "object" &&
    c.connection !== null &&
    "processID" in c
  );
}

/**
 * checkDb throws a TypeError naming `fn` when `db` is not a pool or client
 * (or, with `poolOnly`, not a pool), or when it was ended.
 */
export function checkDb(fn: string, db: unknown, poolOnly: boolean): void {
  const want = poolOnly ? "a pg Pool (new pg.Pool(...))" : "a pg Pool, PoolClient or Client";
  if (isPool(db)) {
    if (db.ending || db.ended === true) {
      throw new TypeError(
        `${fn}: the pool was ended (pool.end() was called); use a pool that is still open`,
      );
    }
    return;
  }
  if (!poolOnly && isClient(db)) {
    if (db._ending === true) {
      throw new TypeError(
        `${fn}: the client was ended (client.end() was called); use a connected client or a pool`,
      );
    }
    return;
  }
  const hint = !(poolOnly && isClient(db))
    ? ""
    : "; a PoolClient is already checked out: run queries on it with query(ctx, client, ...) and BEGIN yourself";
  throw new TypeError(
    `${fn}: ${poolOnly ? "pool" : "db"} must be ${want}, got ${describeValue(db)}${hint}`,
  );
}

/** checkText throws a TypeError naming `fn` when `text` is not SQL text, or `values` not an array. */
export function checkQuery(fn: string, text: unknown, values: unknown): void {
  if (typeof text !== "string") {
    const config =
      typeof text === "object" && text !== null && "text" in text
        ? "; pass the SQL and its values separately: query(ctx, db, config.text, config.values)"
        : "";
    throw new TypeError(`${fn}: text must be a string of SQL, got ${describeValue(text)}${config}`);
  }
  if (values !== undefined && !Array.isArray(values)) {
    throw new TypeError(
      `${fn}: values must be an array of parameters for $1, $2, … (or left out), got ${describeValue(values)}`,
    );
  }
}

/** cancelTarget says where a CancelRequest for `client`'s backend goes: the address the connection reached (as pgx does). */
export function cancelTarget(client: PgClient): CancelTarget | undefined {
  if (client.processID === null || client.secretKey === null) return undefined;
  const stream = client.connection.stream;
  const unix = typeof client.host === "string" && client.host.startsWith("/");
  return {
    host: unix ? client.host : (stream.remoteAddress ?? client.host),
    port: unix ? client.port : (stream.remotePort ?? client.port),
    path: unix ? `${client.host}/.s.PGSQL.${client.port}` : undefined,
    ssl: client.ssl ?? false,
    sslNegotiation: client.sslNegotiation ?? "postgres",
    processID: client.processID,
    secretKey: client.secretKey,
  };
}

/** transactionStatus is the client's last ReadyForQuery status: "I" idle, "T" in a transaction, "E" in a failed one. */
export function transactionStatus(client: PgClient): string | null {
  return typeof client.getTransactionStatus === "function" ? client.getTransactionStatus() : null;
}

/** queryClassOf returns the client's `Client.Query` (pg 8 sets it), from which timed queries are built. */
export function queryClassOf(client: PgClient): unknown {
  return (client.constructor as { Query?: unknown }).Query;
}
