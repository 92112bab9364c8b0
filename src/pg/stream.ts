// Streams and cursors under a context: pg-query-stream's QueryStream and
// pg-cursor's Cursor read a portal batch by batch. Closing one (what
// `stream.destroy()` and `addAbortSignal` do) sends Close+Sync, which the
// server reads only after the batch it is executing: a slow batch runs to
// its end. So when the context ends during a batch, a CancelRequest stops
// it too, under the same rule as a query (run.ts): the connection is kept
// only if the server answered 57014, is idle again, and the cancel
// connection has closed.
import type { Client, Pool, PoolClient } from "pg";
import { afterFunc, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";
import { sendCancelRequest } from "./cancel-request.js";
import { connect } from "./connect.js";
import { cancelTarget, checkDb, dequeue, guardErrors, isPool, type PgClient } from "./pg-client.js";

/** pg-cursor's Cursor as far as this module uses it. */
interface CursorLike {
  state: string;
  submit(connection: unknown): void;
  read(rows: number, callback: (error: Error | undefined, rows: unknown[]) => void): unknown;
  close(callback: (error?: Error) => void): unknown;
}

/** node-postgres's connection as far as a portal listens to it: one event per backend message. */
interface ConnectionEvents {
  on(event: string, listener: (...args: never[]) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
}

/** The backend messages that end a batch: rows up to the limit, the last rows, or an error. */
const BATCH_ENDS = ["portalSuspended", "commandComplete", "errorMessage"] as const;

/**
 * BatchRequests tells whether one of a cursor's batches is executing on the
 * server. pg-cursor's state alone cannot: it reads "idle" during the whole
 * first batch when that batch's Execute went out before the statement's
 * RowDescription came back, which is what a read right after submit does
 * (QueryStream's first read on a client you hold, or cursor()'s first read).
 * Created with the cursor, before it is submitted, so no read is missed.
 */
class BatchRequests {
  /** Set when a read asks for a batch; cleared when the end of a batch arrives on the connection (listened to from the portal's start to its finish). */
  executing = false;
  readonly batchEnded = (): void => {
    this.executing = false;
  };

  constructor(cursor: CursorLike) {
    // The cursor's own read, wrapped on this one instance: QueryStream's
    // _read calls cursor.read, and so does cursor()'s reader.
    const read = cursor.read.bind(cursor);
    cursor.read = (rows, callback) => {
      this.executing = true;
      return read(rows, callback);
    };
  }

  listen(connection: ConnectionEvents): void {
    for (const event of BATCH_ENDS) connection.on(event, this.batchEnded);
  }

  stopListening(connection: ConnectionEvents): void {
    for (const event of BATCH_ENDS) connection.removeListener(event, this.batchEnded);
  }
}

/** pg-query-stream's QueryStream as far as this module uses it. */
interface QueryStreamLike {
  cursor: CursorLike;
  submit(connection: unknown): void;
  destroy(error?: Error): unknown;
  once(event: "close", listener: () => void): unknown;
  _destroy(error: Error | null, callback: (error?: Error | null) => void): void;
}

/** The most rows one Execute can ask for (a 32-bit count; 0 would mean every row). */
const MAX_BATCH_ROWS = 2 ** 31 - 1;

/** How long after the cancel connection closed a batch may still run before the connection is destroyed. */
const RESEND_MS = 100;

/**
 * Portal watches one cursor's portal on one connection while its context
 * lives. Created when the cursor is submitted; done once `finish()` decided
 * the connection's fate (the promise `settled` resolves then).
 */
class Portal {
  readonly client: PgClient;
  readonly cursor: CursorLike;
  /** What was handed to client.query(): the QueryStream, or the Cursor itself. */
  readonly submittable: unknown;
  readonly batches: BatchRequests;
  readonly release: ((error?: Error) => void) | null;
  /** The afterFunc's stop, until the portal closes or the context ends. */
  stop: () => boolean = () => false;
  /**
   * The rejecters of cursor()'s reads waiting for a batch: each joins at
   * c.read() and leaves at its callback; all are rejected, and the set
   * emptied, when the context ends. pg-cursor drops a batch's callback once
   * its portal is closed, so the 57014 of a canceled batch never reaches a
   * read: the context's end answers them instead.
   */
  readonly waitingReads = new Set<(error: unknown) => void>();
  /** Set when a CancelRequest was sent: whether 57014 came, ReadyForQuery after it, and the cancel socket closed. */
  canceled = false;
  saw57014 = false;
  idle = false;
  cancelOpen = false;
  finished = false;
  timer: ReturnType<typeof setTimeout> | undefined;
  readonly settled: Promise<void>;
  resolveSettled!: () => void;
  readonly onError = (message: { code?: string }) => {
    if (message.code === "57014") this.saw57014 = true;
  };
  readonly onReady = () => {
    if (this.saw57014) this.idle = true;
    this.maybeReuse();
  };
  readonly onEnd = () => this.finish(false);

  constructor(
    client: PgClient,
    cursor: CursorLike,
    submittable: unknown,
    batches: BatchRequests,
    release: ((error?: Error) => void) | null,
  ) {
    this.client = client;
    this.cursor = cursor;
    this.submittable = submittable;
    this.batches = batches;
    this.release = release;
    this.settled = new Promise((resolve) => (this.resolveSettled = resolve));
    batches.listen(this.connection());
    // A connection that dies (its backend terminated, the server gone) ends
    // the portal: its close would wait for a ReadyForQuery that never comes.
    this.connection().on("end", this.onEnd);
  }

  connection(): ConnectionEvents {
    return this.client.connection as unknown as ConnectionEvents;
  }

  /**
   * withdraw takes a cursor that was never submitted out of the client's
   * queue, where it waits behind another query on a client you hold:
   * closing it there does nothing (pg-cursor's close needs a connection),
   * and it would start once that query ends, with nobody to read or close
   * it. Call it before closing.
   */
  withdraw(): void {
    if (this.cursor.state === "initialized") dequeue(this.client, this.submittable);
  }

  /** The context ended: cancel the batch if one is executing. Returns whether a cancel was sent. */
  cancelBatch(): boolean {
    this.withdraw();
    const state = this.cursor.state;
    // "idle" during a batch is pg-cursor's reading of a batch asked for right after submit (see BatchRequests).
    const running =
      state === "busy" || state === "submitted" || (state === "idle" && this.batches.executing);
    if (!running) return false; // between batches: Close+Sync is enough
    const target = cancelTarget(this.client);
    if (target === undefined) return false;
    this.canceled = true;
    this.cancelOpen = true;
    const connection = this.connection();
    connection.on("errorMessage", this.onError);
    connection.on("readyForQuery", this.onReady);
    sendCancelRequest(target).then(
      () => {
        this.cancelOpen = false;
        this.timer = setTimeout(() => this.finish(false), RESEND_MS);
        this.maybeReuse();
      },
      () => {
        this.cancelOpen = false;
        this.finish(false);
      },
    );
    return true;
  }

  maybeReuse(): void {
    if (this.saw57014 && this.idle && !this.cancelOpen) this.finish(true);
  }

  /** The portal closed (or the cancel settled): keep or destroy the connection, once. */
  finish(reuse: boolean): void {
    if (this.finished) return;
    if (this.canceled && reuse && !(this.saw57014 && this.idle && !this.cancelOpen)) return;
    this.finished = true;
    this.stop();
    if (this.timer !== undefined) clearTimeout(this.timer);
    const connection = this.connection();
    this.batches.stopListening(connection);
    connection.removeListener("errorMessage", this.onError);
    connection.removeListener("readyForQuery", this.onReady);
    connection.removeListener("end", this.onEnd);
    if (reuse) {
      this.release?.();
    } else if (this.release !== null) {
      this.release(new Error("taproot: connection destroyed after a canceled stream"));
    } else {
      this.client.end().catch(() => {});
    }
    this.resolveSettled();
  }

  /** The cursor closed normally (or after a cancel): without a cancel the connection is fine. */
  closed(): void {
    if (!this.canceled) this.finish(true);
  }
}

/**
 * start gets a connection (checked out of a pool under `ctx`, or the client
 * given), submits `submittable` on it, and calls `fail` if the checkout fails.
 * A checkout that completes once `abandoned()` says the caller gave up (a
 * stream destroyed while it waited) goes straight back to the pool.
 */
function start(
  ctx: Context,
  db: unknown,
  cursor: CursorLike,
  submittable: unknown,
  onPortal: (portal: Portal) => void,
  fail: (error: unknown) => void,
  abandoned: () => boolean,
): void {
  const batches = new BatchRequests(cursor);
  const go = (client: PgClient, release: ((error?: Error) => void) | null) => {
    const portal = new Portal(client, cursor, submittable, batches, release);
    onPortal(portal);
    client.query(submittable);
  };
  if (isPool(db)) {
    connect(ctx, db as unknown as Pool).then((client) => {
      if (abandoned()) {
        client.release();
        return;
      }
      const pg = client as unknown as PgClient;
      go(
        pg,
        guardErrors(pg, (error) => client.release(error)),
      );
    }, fail);
  } else {
    go(db as PgClient, null);
  }
}

function checkSubmittable(fn: string, what: string, value: unknown, stream: boolean): void {
  const v = value as Partial<QueryStreamLike> | null;
  const ok =
    typeof value === "object" &&
    v !== null &&
    typeof v.submit === "function" &&
    (stream
      ? typeof v.destroy === "function" && typeof v.cursor === "object"
      : typeof (value as CursorLike).read === "function" &&
        typeof (value as CursorLike).close === "function");
  if (!ok) {
    const example = stream
      ? "new QueryStream(text, values) from pg-query-stream"
      : "new Cursor(text, values) from pg-cursor";
    throw new TypeError(`${fn}: ${what} must be ${example}, got ${describeValue(value)}`);
  }
  // A portal runs once: a second reader of the same one gets another's rows,
  // or none, and its connection goes back with the backend still active.
  const c = stream ? (v as QueryStreamLike).cursor : (value as CursorLike);
  if (taken.has(value as object) || taken.has(c) || c.state !== "initialized") {
    const fresh = stream ? "new QueryStream(text, values)" : "new Cursor(text, values)";
    throw new TypeError(
      `${fn}: ${what} was already used (given to stream() or cursor(), or submitted); a ${stream ? "QueryStream" : "Cursor"} runs once, so make a ${fresh} for each call`,
    );
  }
  taken.add(value as object);
  taken.add(c);
}

/** Every QueryStream and Cursor taken by stream() or cursor(), so a second call with one is refused. */
const taken = new WeakSet<object>();

/**
 * stream runs pg-query-stream's `queryStream` on `db` under `ctx` and returns
 * it. `db` is a Pool (a connection is checked out under `ctx` and released
 * when the stream closes) or a client you hold. When `ctx` ends, the stream
 * is destroyed with `ctx.err()`; a batch the server is executing then is
 * canceled on the server (a CancelRequest), and the connection is kept only
 * if that batch ended with 57014 and the connection is idle again (else it
 * is destroyed). The stream's `close` comes once the connection is safe.
 *
 * @example
 * ```ts
 * import QueryStream from "pg-query-stream";
 * import { pipeline } from "node:stream/promises";
 *
 * const rows = stream(ctx, pool, new QueryStream("select * from events where day = $1", [day]));
 * await pipeline(rows, toNdjson, res);
 * ```
 */
export function stream<S extends object>(
  ctx: Context,
  db: Pool | PoolClient | Client,
  queryStream: S,
): S {
  const FN = "stream(ctx, db, queryStream)";
  checkContext(FN, "ctx", ctx);
  checkDb(FN, db, false);
  checkSubmittable(FN, "queryStream", queryStream, true);
  const qs = queryStream as unknown as QueryStreamLike;
  const err = ctx.err();
  if (err !== null) {
    qs.destroy(err);
    return queryStream;
  }
  let portal: Portal | undefined;
  /** Set when the stream is destroyed before its connection came: the checkout, when it completes, is released unused. */
  let destroyedEarly = false;
  // The stream's close waits until the connection's fate is decided.
  const destroy = qs._destroy.bind(qs);
  qs._destroy = (error, callback) => {
    if (portal === undefined) {
      destroyedEarly = true;
      return callback(error);
    }
    const p = portal;
    p.withdraw();
    // The stream closes once the portal has: closed by the server, or ended
    // with its connection (then destroy() never calls back).
    let closeError: Error | null | undefined;
    destroy(error, (e) => {
      closeError = e;
      p.closed();
    });
    p.settled.then(() => callback(closeError ?? error));
  };
  const stop = afterFunc(ctx, () => {
    portal?.cancelBatch();
    qs.destroy(ctx.err() as Error);
  });
  qs.once("close", () => stop());
  start(
    ctx,
    db,
    qs.cursor,
    qs,
    (p) => {
      portal = p;
      p.stop = stop;
    },
    (error) => qs.destroy(error as Error),
    () => destroyedEarly,
  );
  return queryStream;
}

/** A pg-cursor Cursor read under a context; see {@link cursor}. */
export interface ContextCursor<R = unknown> {
  /** Reads up to `rows` rows (an empty array at the end); rejects with `ctx.err()` once the context ended. */
  read(rows: number): Promise<R[]>;
  /** Closes the portal; resolves once the connection is safe to use again (or destroyed). */
  close(): Promise<void>;
}

/**
 * cursor runs pg-cursor's `cursor` on `db` under `ctx` and returns a reader.
 * `db` is a Pool (a connection is checked out under `ctx` and released at
 * close) or a client you hold. When `ctx` ends, a batch the server is
 * executing is canceled on the server, the portal is closed, and `read`
 * rejects with `ctx.err()`; the connection is kept only if the batch ended
 * with 57014 and the connection is idle again. Always call `close()`.
 *
 * @example
 * ```ts
 * import Cursor from "pg-cursor";
 *
 * const reader = cursor(ctx, pool, new Cursor("select * from events"));
 * try {
 *   for (let rows = await reader.read(500); rows.length > 0; rows = await reader.read(500)) send(rows);
 * } finally {
 *   await reader.close();
 * }
 * ```
 */
export function cursor<R = unknown>(
  ctx: Context,
  db: Pool | PoolClient | Client,
  cursor: object,
): ContextCursor<R> {
  const FN = "cursor(ctx, db, cursor)";
  checkContext(FN, "ctx", ctx);
  checkDb(FN, db, false);
  checkSubmittable(FN, "cursor", cursor, false);
  const c = cursor as CursorLike;
  let portal: Portal | undefined;
  let failure: unknown;
  let closing: Promise<void> | undefined;
  const stop = afterFunc(ctx, () => {
    if (portal !== undefined) {
      portal.cancelBatch();
      for (const reject of portal.waitingReads) reject(ctx.err());
      portal.waitingReads.clear();
    }
    // A close that fails rejects the caller's own close(), which shares this promise.
    close().catch(() => {});
  });
  const ready = new Promise<void>((resolve) => {
    if (ctx.err() !== null) return resolve();
    start(
      ctx,
      db,
      c,
      c,
      (p) => {
        portal = p;
        p.stop = stop;
        resolve();
      },
      (error) => {
        failure = error;
        resolve();
      },
      // close() waits for the portal and closes it: a reader never abandons its checkout.
      () => false,
    );
  });
  const close = (): Promise<void> =>
    (closing ??= ready.then(async () => {
      const p = portal;
      if (p === undefined) return;
      p.withdraw();
      // Closed by the server, or ended with its connection (then close() never calls back).
      await Promise.race([new Promise<void>((resolve) => c.close(() => resolve())), p.settled]);
      p.closed();
      await p.settled;
    }));
  return {
    async read(rows: number): Promise<R[]> {
      if (!Number.isInteger(rows) || rows < 1 || rows > MAX_BATCH_ROWS) {
        throw new TypeError(
          `${FN}.read(rows): rows must be a whole number from 1 to ${MAX_BATCH_ROWS}, got ${describeValue(rows)}; it is how many rows one batch reads`,
        );
      }
      await ready;
      if (failure !== undefined) throw failure;
      const err = ctx.err();
      if (err !== null) throw err;
      if (closing !== undefined) return [];
      return new Promise<R[]>((resolve, reject) => {
        // After `ready`, without a failure, the portal exists.
        const waitingReads = (portal as Portal).waitingReads;
        waitingReads.add(reject);
        c.read(rows, (error, got) => {
          waitingReads.delete(reject);
          const done = ctx.err();
          if (done !== null) reject(done);
          else if (error) reject(error);
          else resolve(got as R[]);
        });
      });
    },
    close,
  };
}
