// One query under a context: checkout (when given a pool), the query, and,
// when the context ends first, the CancelRequest and the decision whether the
// connection may serve anyone again.
//
// A CancelRequest names a backend, not a statement (pg-notes §1.0): one that
// lands late kills whatever that connection runs next (lib/pq#1001,
// Effect-TS/effect#8068). So after a cancel was sent, the connection is
// reused only when all three hold:
//   1. its query ended with SQLSTATE 57014 (the cancel landed on it),
//   2. it is idle again (ReadyForQuery), and
//   3. the server has closed the cancel connection (it has signalled the
//      backend: no cancel is still on its way).
// Anything else (the result won the race, another error, the cancel
// connection failed) destroys the connection. A cancel that gets no 57014
// within RESEND_MS of its close is sent once more (2–6 in 1,000 reach the
// server before the query does and do nothing, pg-notes probes); then the
// connection is destroyed.
import { channel } from "node:diagnostics_channel";
import { deadlineOf } from "../context.js";
import { afterFunc, DeadlineExceeded, type Context } from "../index.js";
import { sendCancelRequest } from "./cancel-request.js";
import { pgConfiguredTimeoutMs } from "./configured-timeout.js";
import {
  cancelTarget,
  dequeue,
  guardErrors,
  queryClassOf,
  transactionStatus,
  type PgClient,
  type PgPool,
} from "./pg-client.js";
import {
  CLEAR_LEAKED_TIMEOUT,
  controlsTransaction,
  nearDeadline,
  timedQuery,
} from "./statement-timeout.js";

/** How long after the cancel connection closed a query may still run before the cancel is sent again. */
const RESEND_MS = 100;
/**
 * How long past its deadline a query with a server deadline may run before a
 * CancelRequest is sent: the server's own statement_timeout normally stops it
 * first (the same instant, measured from a later start), with no race at all.
 */
const DEADLINE_GRACE_MS = 50;

/**
 * The diagnostics channel `taproot-context:pg:cancel` gets one message per
 * query canceled by its context, once the connection's fate is known:
 * `{ processID, outcome: "reused" | "destroyed", code, cancelRequests, ms }`
 * (`code` is the SQLSTATE the query ended with, if any; `ms` is the time from
 * the context ending to the decision).
 */
export const cancelChannel = channel("taproot-context:pg:cancel");

/** Queries of ours still running on a client the caller holds; transaction() waits for them before ROLLBACK. */
export const running = new WeakMap<PgClient, Set<Promise<unknown>>>();

/**
 * Clients whose current transaction holds a `SET LOCAL statement_timeout` of
 * ours: added when a timed query goes out in a transaction ("T"), deleted when
 * a query is submitted on the client idle again ("I"). Meanwhile a statement
 * of ours without a deadline sets the timeout back to the default first, so
 * the earlier statement's deadline does not cap it. Never deleted earlier: a
 * ROLLBACK TO SAVEPOINT can undo that reset and bring our setting back.
 */
const capped = new WeakSet<PgClient>();

type Callback = (error: Error | null, result: unknown) => void;

/** The Query object of node-postgres as far as a run tracks it. */
interface Submitted {
  callback?: Callback;
}

const enum State {
  Checkout, // waiting for pool.connect()
  Running, // the query was handed to the client
  Finished, // its reply came after the context ended; the connection's fate is open
  Settled, // the caller has its answer and the connection its fate
}

class Run {
  // A Run lives exactly as long as the one call it serves; the context goes with it.
  // eslint-disable-next-line taproot/no-stored-context
  readonly ctx: Context;
  readonly text: string;
  readonly values: unknown[] | undefined;
  /** The context's deadline in epoch ms (undefined: none), read once at the call: a context's deadline never moves. */
  readonly deadline: number | undefined;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** Whether a server deadline may be attached (false for our own BEGIN, and after a 25001 retry). */
  timed: boolean;
  state = State.Checkout;
  /** Set by the checkout (we release it) or by the caller (they hold it). */
  client: PgClient | null = null;
  /** pg-pool's release for a client we checked out; null when the caller holds the client. */
  release: ((error?: Error) => void) | null = null;
  /** The afterFunc registration's stop, from start until the reply or the context's end. */
  stop: () => boolean = noStop;
  /** The Query handed to the client, to tell whether it is the active one (null: pg shape unknown). */
  submitted: Submitted | null = null;
  /** Whether the query went out with a statement_timeout, and whether the client was idle (no transaction) then. */
  serverDeadline = false;
  idleBefore = false;
  /** Set when the context ended while the query ran; the caller's promise is settled by then or at settle(). */
  canceled = false;
  answered = false;
  /** The SQLSTATE of the reply that came after the cancel (undefined: success or no server error). */
  code: string | undefined;
  /** CancelRequests sent, and whether one is still waiting for the server's close. */
  cancelRequests = 0;
  cancelOpen = false;
  /** Once the reply came after a cancel: whether the connection reported ReadyForQuery since. */
  idle = false;
  /** One timer at a time: the deadline grace or the resend wait; cleared at settle. */
  timer: ReturnType<typeof setTimeout> | undefined;
  canceledAt = 0;
  /** The listeners while waiting for ReadyForQuery after a 57014; removed at settle. */
  onIdle: (() => void) | null = null;
  onEnd: (() => void) | null = null;

  constructor(
    ctx: Context,
    text: string,
    values: unknown[] | undefined,
    deadline: number | undefined,
    timed: boolean,
    resolve: (result: unknown) => void,
    reject: (error: unknown) => void,
  ) {
    this.ctx = ctx;
    this.text = text;
    this.values = values;
    this.deadline = deadline;
    this.timed = timed;
    this.resolve = resolve;
    this.reject = reject;
  }

  watch(): void {
    this.stop = afterFunc(this.ctx, () => this.done());
  }

  /** Checks a client out of `pool`, then runs the query on it and releases it. */
  checkout(pool: PgPool): void {
    this.watch();
    pool.connect((error, client, release) => {
      if (this.state !== State.Checkout) {
        // The caller gave up while waiting: give the connection back, never lose it.
        if (client !== undefined) release();
        return;
      }
      if (error !== undefined || client === undefined) {
        this.state = State.Settled;
        this.stop();
        this.reject(error);
        return;
      }
      this.client = client;
      this.release = guardErrors(client, release);
      this.submit();
    });
  }

  /** Runs the query on a client the caller holds (a PoolClient, a Client, or a transaction's). */
  on(client: PgClient): void {
    this.client = client;
    this.watch();
    if (this.state === State.Checkout) this.submit();
  }

  submit(): void {
    const client = this.client as PgClient;
    this.state = State.Running;
    const callback: Callback = (error, result) => this.answer(error, result);
    const Query = queryClassOf(client);
    let query: Submitted | undefined;
    const status = this.timed ? transactionStatus(client) : null;
    if (status === "I") capped.delete(client);
    // The prefix's timeout: the time left, null for the default (after a timed
    // query of ours in this transaction), undefined for no prefix.
    let ms: number | null | undefined;
    // Never more than the client's own configured statement_timeout: a deadline tightens it, never lifts it.
    if (this.timed && this.deadline !== undefined) {
      ms = Math.min(this.deadline - Date.now(), pgConfiguredTimeoutMs(client));
    } else if (this.timed && capped.has(client)) ms = null;
    // Transaction control runs bare (statement-timeout.ts says why), and so does
    // anything in a failed transaction ("E"), which refuses all but what ends it.
    // Unless the client is in a transaction ("T"), LOCK and DECLARE run bare too;
    // an unknown status (null) counts as idle: bare is what fails as without a deadline.
    if (ms !== undefined && status !== "E" && !controlsTransaction(this.text, status !== "T")) {
      this.idleBefore = status === "I";
      query = timedQuery(Query, this.text, this.values, ms, callback);
      this.serverDeadline = query !== undefined && ms !== null;
      if (this.serverDeadline && status === "T") capped.add(client);
    }
    if (query === undefined && typeof Query === "function") {
      query = new (
        Query as new (text: string, values?: unknown[], callback?: Callback) => Submitted
      )(this.text, this.values, callback);
    }
    try {
      if (query !== undefined) {
        this.submitted = query;
        client.query(query);
      } else {
        client.query(this.text, this.values, callback);
      }
    } catch (error) {
      this.answer(error as Error, undefined);
    }
  }

  /** The client's reply: the result, or the error the server (or the driver) gave. */
  answer(error: Error | null, result: unknown): void {
    if (this.state === State.Settled) return; // e.g. "Connection terminated" after we destroyed it
    const code = error === null ? undefined : (error as { code?: unknown }).code;
    if (!this.canceled) {
      if (
        code === "25001" &&
        this.serverDeadline &&
        this.idleBefore &&
        this.client !== null &&
        transactionStatus(this.client) !== "T"
      ) {
        // VACUUM, CREATE DATABASE, … refuse to run inside the implicit transaction
        // that carries the statement_timeout; nothing ran, so run it again without one
        // (the CancelRequest still guards it).
        this.timed = false;
        this.serverDeadline = false;
        this.submit();
        return;
      }
      if (code === "57014" && this.serverDeadline && nearDeadline(this.deadline)) {
        // Our statement_timeout beat the context's own timer: report the deadline, as
        // the context will in a moment.
        this.state = State.Finished;
        this.code = code;
        if (this.ctx.err() !== null) this.done();
        return;
      }
      this.state = State.Settled;
      this.stop();
      // Ended near its deadline, the query may have left a statement timeout
      // for the connection's next command: ours clears it first.
      const clear = this.serverDeadline && nearDeadline(this.deadline);
      const release = this.release;
      if (release === null) {
        // Queued now, it runs before anything the caller sends next.
        if (clear) void clearLeakedTimeout(this.client as PgClient);
      } else if (error === null && clear) {
        void clearLeakedTimeout(this.client as PgClient).then((clean) =>
          release(clean ? undefined : new Error("taproot: connection destroyed after a query")),
        );
      } else {
        // As pool.query does: a connection that saw an error leaves the pool.
        release(error ?? undefined);
      }
      if (error !== null) this.reject(error);
      else this.resolve(result);
      return;
    }
    this.state = State.Finished;
    this.code = typeof code === "string" ? code : undefined;
    if (this.code === "57014") this.waitIdle();
    else this.settle(false); // the result (or another error) won the race: a cancel may still land
  }

  /** The context ended (afterFunc; asynchronous, after the cancel that ended it). */
  done(): void {
    if (this.state === State.Settled || this.canceled) return;
    this.canceled = true;
    this.canceledAt = performance.now();
    if (this.state === State.Checkout) {
      // Waiting for a connection: stop waiting; checkout() releases a late one.
      this.state = State.Settled;
      this.reject(this.ctx.err());
      return;
    }
    // A connection of our own is nobody's concern but ours: answer now, decide its fate after.
    if (this.release !== null) this.reject(this.ctx.err());
    if (this.state === State.Finished) {
      // Our statement_timeout answered already (answer() above).
      this.waitIdle();
      return;
    }
    if (!this.isActive()) {
      // Still queued behind another query on the caller's client: take it out
      // of the queue; a CancelRequest would hit that other query.
      this.state = State.Finished;
      this.settle(true);
      return;
    }
    if (this.serverDeadline && this.ctx.err() === DeadlineExceeded) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.state === State.Running) this.cancel();
      }, DEADLINE_GRACE_MS);
      return;
    }
    this.cancel();
  }

  /** isActive tells whether our query is the one the client runs now, and dequeues it if it only waits. */
  isActive(): boolean {
    const client = this.client as PgClient & { _activeQuery?: unknown; _queryQueue?: unknown[] };
    if (
      this.submitted === null ||
      !("_activeQuery" in client) ||
      !Array.isArray(client._queryQueue)
    )
      return true;
    if (client._activeQuery === this.submitted) return true;
    // Not in the queue: in pg's pipeline queue, on the wire already.
    return !dequeue(client, this.submitted);
  }

  cancel(): void {
    const target = cancelTarget(this.client as PgClient);
    if (target === undefined) return this.settle(false);
    this.cancelRequests++;
    this.cancelOpen = true;
    sendCancelRequest(target).then(
      () => {
        this.cancelOpen = false;
        if (this.state === State.Running) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            if (this.state !== State.Running) return;
            if (this.cancelRequests < 2) this.cancel();
            else this.settle(false);
          }, RESEND_MS);
        } else {
          this.maybeReuse();
        }
      },
      () => {
        this.cancelOpen = false;
        this.settle(false);
      },
    );
  }

  /** After a 57014: wait for ReadyForQuery (normally in the same packet), or the connection's end. */
  waitIdle(): void {
    const client = this.client as PgClient;
    if (client.readyForQuery) {
      this.idle = true;
      return this.maybeReuse();
    }
    this.onIdle = () => {
      this.idle = true;
      this.maybeReuse();
    };
    this.onEnd = () => this.settle(false);
    client.connection.once("readyForQuery", this.onIdle);
    client.connection.once("end", this.onEnd);
  }

  maybeReuse(): void {
    if (this.state === State.Finished && this.code === "57014" && this.idle && !this.cancelOpen)
      this.settle(true);
  }

  /** The connection's fate: reuse (idle, no cancel in flight) or destroy; then the caller's answer. */
  settle(reuse: boolean): void {
    if (this.state === State.Settled) return;
    const wasRunning = this.state === State.Running;
    this.state = State.Settled;
    this.stop();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client as PgClient;
    if (this.onIdle !== null) client.connection.removeListener("readyForQuery", this.onIdle);
    if (this.onEnd !== null) client.connection.removeListener("end", this.onEnd);
    this.onIdle = this.onEnd = null;
    if (reuse) {
      if (this.release !== null) this.release();
    } else {
      const target = wasRunning ? cancelTarget(client) : undefined;
      if (this.release !== null)
        this.release(new Error("taproot: connection destroyed after a cancel"));
      else client.end().catch(() => {});
      // The backend may still run (our cancels got no 57014): one more, now that
      // nothing else can run on it, so it stops rather than run to the end.
      if (target !== undefined) sendCancelRequest(target).catch(() => {});
    }
    if (cancelChannel.hasSubscribers) {
      cancelChannel.publish({
        processID: client.processID,
        outcome: reuse ? "reused" : "destroyed",
        code: this.code,
        cancelRequests: this.cancelRequests,
        ms: performance.now() - this.canceledAt,
      });
    }
    if (this.release === null) this.reject(this.ctx.err());
  }
}

/**
 * clearLeakedTimeout runs an empty query on a client whose timed statement
 * or transaction ended near its deadline, before anyone else's command: a
 * statement timeout PostgreSQL carried over fails this query instead
 * (statement-timeout.ts, CLEAR_LEAKED_TIMEOUT). It resolves true when the
 * connection is clean (the query ran, or took the leaked 57014), false when
 * it failed otherwise and should be destroyed.
 */
export function clearLeakedTimeout(client: PgClient): Promise<boolean> {
  return new Promise((resolve) => {
    client.query(CLEAR_LEAKED_TIMEOUT, undefined, (error) => {
      resolve(error === null || (error as { code?: unknown }).code === "57014");
    });
  });
}

function noStop(): boolean {
  return false;
}

/**
 * runQuery runs `text` under `ctx` on a connection checked out of `pool`
 * (released at the end, destroyed when a cancel makes it unsafe), or on
 * `client`, which the caller holds: then the promise settles only once the
 * connection is idle with no cancel in flight, or destroyed. `fn` names the
 * caller's function in the TypeError for a user context whose deadline() is
 * not a Date.
 */
export function runQuery(
  ctx: Context,
  pool: PgPool | null,
  client: PgClient | null,
  text: string,
  values: unknown[] | undefined,
  fn: string,
  timed = true,
): Promise<unknown> {
  const err = ctx.err();
  if (err !== null) return Promise.reject(err);
  const deadline = deadlineOf(fn, ctx);
  let run!: Run;
  const promise = new Promise<unknown>((resolve, reject) => {
    run = new Run(ctx, text, values, deadline, timed, resolve, reject);
  });
  if (pool !== null) {
    run.checkout(pool);
    return promise;
  }
  const held = client as PgClient;
  let set = running.get(held);
  if (set === undefined) running.set(held, (set = new Set()));
  const tracked = set;
  const forget = () => {
    tracked.delete(promise);
  };
  tracked.add(promise);
  promise.then(forget, forget);
  run.on(held);
  return promise;
}
