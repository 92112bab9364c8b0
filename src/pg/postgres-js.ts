import type { ParameterOrFragment, PendingQuery, ReservedSql, Row, RowList, Sql } from "postgres";
import { afterFunc, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";
import {
  execute,
  isServerError,
  statementTimeoutMs,
  type Fate,
  type Runner,
} from "./postgres-js-run.js";
import { taggedText } from "./postgres-js-text.js";
import { opensTransaction } from "./statement-timeout.js";

/**
 * ContextSql is postgres.js's tagged template bound to a context: every
 * statement it runs is canceled on the server when the context ends, and
 * bounded by the context's deadline on the server too. Build one per
 * request or job with {@link contextSql}, or get one from {@link begin}.
 * A statement is a Promise of its rows: postgres.js's query methods on it
 * (`.values()`, `.cursor()`, `.forEach()`, …) throw a TypeError, and it is
 * not sent.
 *
 * @example
 * ```ts
 * const db = contextSql(ctx, sql);
 * const [user] = await db`select * from users where id = ${id}`;
 * const rows = await db.unsafe("select * from jobs where state = $1", ["queued"]);
 * ```
 */
export interface ContextSql {
  /** Runs the tagged statement under the context; fragments and helpers built with your `sql` work inside. */
  <T extends readonly object[] = Row[]>(
    strings: TemplateStringsArray,
    ...values: readonly ParameterOrFragment<never>[]
  ): Promise<RowList<T>>;
  /** Runs `text` with `$1`-style parameters under the context, like `sql.unsafe(text, values)`. */
  unsafe<T extends readonly object[] = Row[]>(
    text: string,
    values?: readonly unknown[],
  ): Promise<RowList<T>>;
}

/** The `sql` of postgres.js, as far as contextSql and begin use it. */
export type PostgresSql = Pick<Sql, "reserve" | "begin" | "unsafe">;

/**
 * contextSql returns postgres.js's `sql` tag bound to `ctx`. A statement run
 * through it rejects with `ctx.err()` at once if `ctx` is already done
 * (nothing is sent); if `ctx` ends while it waits for a connection, the wait
 * ends and the connection is given back when it comes; if `ctx` ends while
 * it runs, postgres.js sends a CancelRequest (over TLS when the connection
 * uses TLS), the backend stops, and the promise rejects with `ctx.err()`
 * (`cause(ctx)` says why). The remaining time of `ctx`'s deadline is also set
 * as the statement's `statement_timeout`, so the server stops it even if this
 * process dies.
 *
 * A cancel never reaches another statement: each statement under a context
 * that can end runs alone on a reserved connection (`sql.reserve()`), which
 * goes back to the pool only if the statement ended with 57014 after a cancel
 * and the server has closed the cancel connection; otherwise its backend is
 * terminated and postgres.js reconnects on demand. The price is postgres.js's
 * pipelining between concurrent statements, for those statements only: under
 * a context that can never end (`background()`) the statement goes straight
 * to `sql`, pipelined as usual. Call `contextSql` per request or job: it is a
 * closure, cheap to make. A statement that opens a transaction (BEGIN, START
 * TRANSACTION), in its text or in a fragment's (`${sql.unsafe("begin")}`),
 * is refused with a TypeError before anything is sent: the reserved
 * connection would go back to the pool inside it; use {@link begin}.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { contextSql } from "taproot-context/pg";
 *
 * const sql = postgres(process.env.DATABASE_URL!);
 * async function handle(ctx: Context, id: number) {
 *   const db = contextSql(ctx, sql);
 *   const [order] = await db`select * from orders where id = ${id}`;
 *   return order; // the query stopped on the server if the client left
 * }
 * ```
 */
export function contextSql(ctx: Context, sql: PostgresSql): ContextSql {
  const name = "contextSql(ctx, sql)";
  checkContext(name, "ctx", ctx);
  checkSql(name, sql);
  const tag = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    if (!Array.isArray(strings) || !Array.isArray((strings as { raw?: unknown }).raw)) {
      return Promise.reject(
        new TypeError(
          `${name}: call the result as a tagged template (db\`select ...\`), got ${describeValue(strings)}; use db.unsafe(text, values) for a string`,
        ),
      );
    }
    return statement(
      ctx,
      sql,
      () => taggedText(sql, strings, values),
      (r) => r(strings, ...(values as never[])),
    );
  }) as ContextSql;
  tag.unsafe = (text: string, values?: readonly unknown[]) => {
    const bad = checkText("contextSql(ctx, sql).unsafe(text, values)", text, values);
    if (bad) return Promise.reject(bad);
    return statement(
      ctx,
      sql,
      () => text,
      (r) => r.unsafe(text, values as never[]) as PendingQuery<never>,
    );
  };
  return tag;
}

/** checkSql throws a TypeError naming `fn` unless `sql` looks like postgres.js's `sql`. */
export function checkSql(fn: string, sql: unknown): asserts sql is PostgresSql {
  const s = sql as Partial<Record<keyof PostgresSql, unknown>> | null | undefined;
  if (
    typeof sql !== "function" ||
    typeof s?.reserve !== "function" ||
    typeof s.begin !== "function" ||
    typeof s.unsafe !== "function"
  ) {
    throw new TypeError(
      `${fn}: sql must be postgres.js's sql (the result of postgres(url)), got ${describeValue(sql)}`,
    );
  }
}

/** checkText returns the TypeError for a statement text or values list of the wrong shape, if any. */
export function checkText(fn: string, text: unknown, values: unknown): TypeError | undefined {
  if (typeof text !== "string") {
    return new TypeError(`${fn}: text must be a string of SQL, got ${describeValue(text)}`);
  }
  if (values !== undefined && !Array.isArray(values)) {
    return new TypeError(
      `${fn}: values must be an array of parameters for $1, $2, ..., got ${describeValue(values)}`,
    );
  }
  return undefined;
}

/**
 * Misuse is what a postgres.js query method called on a statement's promise
 * says (`fn`, the function the caller called; `through`, what the statement
 * went through), and the TypeError it threw: set by the first such call.
 */
export interface Misuse {
  readonly fn: string;
  readonly through: string;
  error: TypeError | undefined;
}

/** postgres.js's methods of a pending query, which a statement through contextSql or tx does not have. */
const QUERY_METHODS = [
  "values",
  "raw",
  "cursor",
  "forEach",
  "describe",
  "simple",
  "execute",
] as const;

const MISUSE = Symbol("taproot misuse");

/**
 * statement is one statement through contextSql: {@link run}, its promise
 * given the query methods that refuse (withoutQueryMethods).
 */
function statement<T>(
  ctx: Context,
  sql: PostgresSql,
  text: () => string,
  build: (r: Runner) => PendingQuery<never>,
): Promise<T> {
  const misuse: Misuse = { fn: "contextSql(ctx, sql)", through: "contextSql", error: undefined };
  return withoutQueryMethods(run<T>(ctx, sql, text, build, misuse), misuse);
}

/**
 * withoutQueryMethods gives `promise`, a statement's, postgres.js's query
 * methods, each of which throws a TypeError that says to await the result
 * and records it in `misuse`. The statement's runner reads `misuse` after an
 * await, before anything is sent (run after its first await, tx when the
 * statement's turn comes), and sends nothing; its promise rejects with the
 * same TypeError, marked as handled, since the caller got the error where
 * they made the mistake.
 */
export function withoutQueryMethods<T>(promise: Promise<T>, misuse: Misuse): Promise<T> {
  const p = promise as Promise<T> & Record<string | symbol, unknown>;
  p[MISUSE] = misuse;
  for (const name of QUERY_METHODS) p[name] = queryMethods[name];
  return promise;
}

const queryMethods = Object.fromEntries(
  QUERY_METHODS.map((name) => [
    name,
    function (this: Promise<unknown> & { [MISUSE]: Misuse }): never {
      const misuse = this[MISUSE];
      const error = new TypeError(
        `${misuse.fn}: .${name}() is a method of postgres.js's own queries; a statement through ${misuse.through} is a Promise of its rows: await it (the method is not available, and this statement is not sent)`,
      );
      misuse.error ??= error;
      this.catch(() => undefined);
      throw error;
    },
  ]),
);

/**
 * run is one statement under ctx on the pool `sql`: checkout, execute, and
 * the connection's fate. `text` gives the statement's text as postgres.js
 * will send it (fragments included: taggedText), read for what opens a
 * transaction; only when ctx can end, since only then is a connection reserved.
 * A query method called on the result (`misuse`) is seen after run's first
 * await, before anything is sent.
 */
async function run<T>(
  ctx: Context,
  sql: PostgresSql,
  text: () => string,
  build: (r: Runner) => PendingQuery<never>,
  misuse: Misuse,
): Promise<T> {
  const done = ctx.err();
  if (done !== null) throw done;
  // A context that can never end never cancels: nothing to guard against.
  if (ctx.done() === null) {
    await undefined;
    if (misuse.error !== undefined) throw misuse.error;
    return (await build(sql as unknown as Runner)) as T;
  }
  // postgres.js refuses BEGIN on a pool (UNSAFE_TRANSACTION) but not on a
  // reserved connection, and this one goes back to the pool afterwards: the
  // transaction would stay open on it, and every later caller's writes there
  // would wait for a COMMIT nobody sends.
  if (opensTransaction(text())) {
    throw new TypeError(
      "contextSql(ctx, sql): a statement that opens a transaction (BEGIN, START TRANSACTION) " +
        "would leave it open on a pooled connection; run the transaction with begin(ctx, sql, fn) instead",
    );
  }
  const reserved = await reserve(ctx, sql);
  if (misuse.error !== undefined) {
    await settle(sql, reserved, "reuse");
    throw misuse.error;
  }
  const outcome = await execute<T>(
    ctx,
    reserved as unknown as Runner,
    build,
    statementTimeoutMs(ctx, "contextSql(ctx, sql)", sql),
    false,
  );
  const settled = outcome.fate.then((fate) => settle(sql, reserved, fate));
  // Answer once the connection is back (counts are normal when the caller
  // resumes), unless the statement outlived a lost cancel: then it settles later.
  // Not earlier, as query(ctx, pool) does: a caller that calls sql.end() next
  // would wait forever, since postgres.js 3.4 puts a reserved connection
  // released after end() among the open ones and never closes it.
  if (!outcome.gaveUp) await settled;
  if (!outcome.ok) throw outcome.error;
  return outcome.value as T;
}

/**
 * What taproot knows of each `sql` it was given: `"open"`, or postgres.js's
 * own CONNECTION_ENDED error once `sql.end()` was called. postgres.js keeps
 * its `ending` flag private and `sql.reserve()` does not look at it: after
 * end() it opens a fresh connection that nobody closes. So the first reserve
 * on a `sql` asks postgres.js itself, with an empty statement through `sql`
 * (rejected with CONNECTION_ENDED once ended, a no-op otherwise), and wraps
 * `sql.end` to hear of a later end. Set on first use, never cleared.
 */
const lifecycles = new WeakMap<PostgresSql, Lifecycle>();

/**
 * Lifecycle is what taproot knows of one `sql`: `known` while the probe is
 * out, then its answer in `state` too, so that a statement on a `sql` known
 * to be open costs a map lookup and no promise.
 */
interface Lifecycle {
  known: Promise<"open" | Error>;
  state: "probing" | "open" | Error;
}

/** lifecycleOf starts watching `sql` (see `lifecycles`) on first use, and returns what is known of it. */
function lifecycleOf(sql: PostgresSql): Lifecycle {
  let life = lifecycles.get(sql);
  if (life !== undefined) return life;
  life = watch(probe(sql));
  lifecycles.set(sql, life);
  const end = (sql as { end?: unknown }).end;
  if (typeof end === "function") {
    (sql as unknown as { end: unknown }).end = function (this: unknown, ...args: unknown[]) {
      const ending = (end as (...a: unknown[]) => unknown).apply(this, args);
      // end() sets postgres.js's flag a microtask later; probed after it, the
      // empty statement is rejected without being sent.
      lifecycles.set(sql, watch(Promise.resolve().then(() => probe(sql))));
      return ending;
    };
  }
  return life;
}

function watch(known: Promise<"open" | Error>): Lifecycle {
  const life: Lifecycle = { known, state: "probing" };
  void known.then((state) => (life.state = state));
  return life;
}

/**
 * endedError resolves with the error postgres.js gives statements on an ended
 * `sql`, or undefined while it is open. An "open" from a probe that sql.end()
 * has since replaced is stale (it was queued before the end), so the current
 * record is asked again: at most once more per end() call.
 */
async function endedError(sql: PostgresSql): Promise<Error | undefined> {
  for (;;) {
    const life = lifecycleOf(sql);
    const state = life.state === "probing" ? await life.known : life.state;
    if (state !== "open") return state;
    if (lifecycleOf(sql) === life) return undefined;
  }
}

/** probe sends an empty statement through `sql` (no round trip to a backend's executor) and says whether postgres.js refused it as ended. */
function probe(sql: PostgresSql): Promise<"open" | Error> {
  return Promise.resolve(sql.unsafe("").execute()).then(
    () => "open" as const,
    (error: unknown) =>
      (error as { code?: unknown } | null)?.code === "CONNECTION_ENDED"
        ? (error as Error)
        : ("open" as const),
  );
}

/**
 * reserve waits for a connection of our own, or until ctx is done. postgres.js
 * cannot withdraw the wait (`sql.reserve()` takes no signal), so a connection
 * that arrives after the caller gave up is released at once, never lost. On
 * an ended `sql` it rejects with postgres.js's own CONNECTION_ENDED error,
 * as `sql` itself does, and opens nothing.
 */
export async function reserve(ctx: Context, sql: PostgresSql): Promise<ReservedSql> {
  const life = lifecycleOf(sql);
  if (life.state !== "open") {
    const ended = await untilDone(ctx, endedError(sql));
    if (ended !== undefined) throw ended;
  }
  const pending = sql.reserve();
  return new Promise<ReservedSql>((resolve, reject) => {
    const stop = afterFunc(ctx, () => reject(ctx.err()));
    pending.then(
      (reserved) => {
        if (!stop()) return void settle(sql, reserved, "reuse");
        // sql.end() may have been called while we waited: this connection would never close.
        const answer = (ended: Error | undefined): void => {
          if (ended === undefined) return resolve(reserved);
          reject(ended);
          void settle(sql, reserved, "retire");
        };
        const now = lifecycleOf(sql).state;
        if (now === "open") answer(undefined);
        else void endedError(sql).then(answer);
      },
      (error: unknown) => stop() && reject(error),
    );
  });
}

/** untilDone resolves with `promise`'s value, or rejects with ctx.err() if ctx ends first. */
function untilDone<T>(ctx: Context, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stop = afterFunc(ctx, () => reject(ctx.err()));
    promise.then(
      (value) => stop() && resolve(value),
      (error: unknown) => stop() && reject(error),
    );
  });
}

/** How many times a retiring connection is asked to end before it is terminated mid-statement. */
const RETIRE_ATTEMPTS = 3;

/**
 * settle gives a reserved connection back, or retires it, or leaves it to
 * postgres.js when it is gone. A connection of an ended `sql` is retired,
 * never given back: postgres.js would keep it open for good.
 *
 * Retiring asks the server to end the session once it is idle
 * (`idle_session_timeout`, PostgreSQL 14+) rather than terminating it
 * mid-statement: a FATAL that arrives while a statement is active stays
 * behind in postgres.js 3.4 and fails the first statement of the next
 * connection it opens. On close postgres.js un-reserves the connection and
 * reconnects on demand, so release() must not follow. A connection that
 * refuses to retire is never given back either: it may sit in a failed
 * transaction (25P02: then ROLLBACK, the one statement it takes, and again),
 * or a late cancel may have hit the SET (57014: spent, so again). Past
 * RETIRE_ATTEMPTS (or at once before PostgreSQL 14) it is terminated
 * mid-statement after all: one stray FATAL on the next connection is better
 * than a poisoned one in the pool.
 */
export async function settle(sql: PostgresSql, reserved: ReservedSql, fate: Fate): Promise<void> {
  if (fate === "gone") return;
  const ended = (await endedError(sql)) !== undefined;
  if (fate === "reuse" && !ended) return reserved.release();
  if (ended) {
    // postgres.js 3.4 closes a connection at end() only at a ReadyForQuery
    // that finds it no longer reserved: one released afterwards stays open,
    // and end() never resolves (plain sql.reserve() does the same). So it is
    // released with a last statement on its way, whose ReadyForQuery then
    // closes it. A connection that might sit in a transaction ends with it.
    const last = reserved.unsafe(fate === "reuse" ? "select 1" : "rollback").then(
      () => undefined,
      () => undefined,
    );
    reserved.release();
    return last;
  }
  for (let attempt = 0; attempt < RETIRE_ATTEMPTS; attempt++) {
    const error = await reserved.unsafe("set idle_session_timeout = 1").then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error === undefined || !isServerError(error)) return; // retiring, or gone
    const code = (error as { code?: unknown }).code;
    if (code === UNDEFINED_OBJECT) break; // before PostgreSQL 14: no idle_session_timeout
    if (code === IN_FAILED_TRANSACTION) await reserved.unsafe("rollback").catch(() => undefined);
  }
  // Refused even this (a transaction ROLLBACK could not end): it stays
  // reserved, lost to the pool rather than poisoning it.
  await reserved.unsafe("select pg_terminate_backend(pg_backend_pid())").catch(() => undefined);
}

/** SQLSTATE of "current transaction is aborted, commands ignored until end of transaction block". */
const IN_FAILED_TRANSACTION = "25P02";
/** SQLSTATE of "unrecognized configuration parameter" (idle_session_timeout before PostgreSQL 14). */
const UNDEFINED_OBJECT = "42704";
