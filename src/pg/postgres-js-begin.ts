import type { PendingQuery, ReservedSql } from "postgres";
import { afterFunc, DeadlineExceeded, withCancel, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";
import {
  checkSql,
  checkText,
  reserve,
  settle,
  withoutQueryMethods,
  type ContextSql,
  type Misuse,
  type PostgresSql,
} from "./postgres-js.js";
import {
  clearLeakedTimeout,
  execute,
  isConnectionError,
  nearDeadline,
  statementTimeoutMs,
  timedOutAtDeadline,
  type Fate,
  type Runner,
} from "./postgres-js-run.js";

const FN = "begin(ctx, sql, fn)";

/**
 * begin runs `fn(ctx, tx)` in a transaction under `ctx`, and resolves with
 * what `fn` resolves with once COMMIT succeeded. `tx` is a
 * {@link ContextSql} on the transaction's connection, which is reserved
 * (`sql.reserve()`) for it, as `sql.begin` does, so that a cancel can never
 * reach another caller's statement. When `fn`
 * throws, or when `ctx` ends (the running statement is canceled on the
 * server first), the transaction rolls back and `begin` rejects with `fn`'s
 * error or `ctx.err()`. It is never half-committed and never left idle in a
 * transaction: if a cancel could still reach the connection, its backend is
 * terminated instead, which rolls back too.
 *
 * `ctx`'s deadline becomes `SET LOCAL statement_timeout` with the time left
 * (sent in front of each statement, one round trip; capped at the
 * largest value PostgreSQL takes), so the server ends the transaction's
 * statements at the deadline even if this process dies. The `ctx` given to
 * `fn` ends with the transaction: a statement `fn` did not await is
 * canceled, not waited for, and a transaction it left failed is not
 * committed (`begin` rejects). Statements through
 * `tx` run one at a time, in call order: a cancel meant for one never lands
 * on the next. `tx` refuses statements once the transaction has ended. A
 * context already done runs nothing; one that ends while `begin` waits for a
 * connection gets BEGIN then ROLLBACK, and `fn` never runs. `options` are
 * postgres.js's (`"isolation level serializable"`, `"read only"`).
 *
 * @example
 * ```ts
 * const id = await begin(ctx, sql, async (ctx, tx) => {
 *   const [job] = await tx`select id from jobs where done_at is null
 *                          order by id for update skip locked limit 1`;
 *   if (job) await tx`update jobs set done_at = now() where id = ${job.id}`;
 *   return job?.id;
 * });
 * ```
 */
export function begin<T>(
  ctx: Context,
  sql: PostgresSql,
  fn: (ctx: Context, tx: ContextSql) => Promise<T> | T,
): Promise<T>;
export function begin<T>(
  ctx: Context,
  sql: PostgresSql,
  options: string,
  fn: (ctx: Context, tx: ContextSql) => Promise<T> | T,
): Promise<T>;
export function begin<T>(
  ctx: Context,
  sql: PostgresSql,
  optionsOrFn: string | ((ctx: Context, tx: ContextSql) => Promise<T> | T),
  maybeFn?: (ctx: Context, tx: ContextSql) => Promise<T> | T,
): Promise<T> {
  checkContext(FN, "ctx", ctx);
  checkSql(FN, sql);
  const options = typeof optionsOrFn === "string" ? optionsOrFn : "";
  const fn = typeof optionsOrFn === "string" ? maybeFn : optionsOrFn;
  if (typeof fn !== "function") {
    throw new TypeError(
      `${FN}: fn must be a function (ctx, tx) => Promise, got ${describeValue(fn)}`,
    );
  }
  return transact(ctx, sql, options, fn);
}

async function transact<T>(
  ctx: Context,
  sql: PostgresSql,
  options: string,
  fn: (ctx: Context, tx: ContextSql) => Promise<T> | T,
): Promise<T> {
  const done = ctx.err();
  if (done !== null) throw done;
  // Read once here so that a deadline() that is not a Date is a TypeError before anything is sent.
  statementTimeoutMs(ctx, FN, sql);
  const reserved = await reserve(ctx, sql);
  const runner = reserved as unknown as Runner;
  try {
    await reserved.unsafe(`begin ${options.replace(/[^a-z ]/gi, "")}`);
  } catch (error) {
    // BEGIN itself failed: no transaction was opened.
    await settle(sql, reserved, isConnectionError(error) ? "gone" : "reuse");
    throw error;
  }
  // fn's context: ends with the transaction, so a statement fn left running
  // when it threw (or returned) is canceled rather than awaited.
  const [txCtx, cancelTx] = withCancel(ctx);
  // The connection's fate once COMMIT or ROLLBACK succeeded: they ran under
  // the transaction's SET LOCAL statement_timeout, so near the deadline they
  // may have left a statement timeout for the connection's next caller
  // (statement-timeout.ts, CLEAR_LEAKED_TIMEOUT); it is cleared here first.
  const fateAfterEnd = (fate: Fate): Promise<Fate> | Fate =>
    fate === "reuse" && nearDeadline(ctx) ? clearLeakedTimeout(runner) : fate;
  // Resolves with the last statement's fate once it fully settled (its
  // cancel included): the next statement, and the ROLLBACK, wait for it.
  let queue: Promise<Fate> = Promise.resolve("reuse");
  let ended = false;
  const statement = <R>(build: (r: Runner) => PendingQuery<never>): Promise<R> => {
    const misuse: Misuse = { fn: FN, through: "tx", error: undefined };
    if (ended) {
      const late = new Error(
        `${FN}: a statement through tx after the transaction ended; await every statement inside fn`,
      );
      return withoutQueryMethods(Promise.reject(late), misuse);
    }
    // Runs a turn later at the earliest: a query method called on the result has been seen.
    const run = queue.then(() => {
      const err = txCtx.err();
      if (err !== null) throw err;
      if (misuse.error !== undefined) throw misuse.error;
      // SET LOCAL statement_timeout to the time left, in front of each
      // statement: the server stops it at the deadline, and the
      // CancelRequest waits out the server's own timeout first.
      return execute<R>(txCtx, runner, build, statementTimeoutMs(txCtx, FN, sql), true);
    });
    queue = run.then(
      (outcome) => outcome.fate,
      () => "reuse" as const, // nothing was sent
    );
    const answer = run.then((outcome) => {
      if (!outcome.ok) throw outcome.error;
      return outcome.value as R;
    });
    return withoutQueryMethods(answer, misuse);
  };
  const tx = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    if (!Array.isArray(strings) || !Array.isArray((strings as { raw?: unknown }).raw)) {
      return Promise.reject(
        new TypeError(
          `${FN}: call tx as a tagged template (tx\`select ...\`), got ${describeValue(strings)}`,
        ),
      );
    }
    return statement((r) => r(strings, ...(values as never[])));
  }) as ContextSql;
  tx.unsafe = (text: string, values?: readonly unknown[]) => {
    const bad = checkText(`${FN}: tx.unsafe(text, values)`, text, values);
    if (bad) return Promise.reject(bad);
    return statement((r) => r.unsafe(text, values as never[]) as PendingQuery<never>);
  };

  // fn races ctx: a context that ends between statements ends the transaction too.
  let stop: () => boolean = () => false;
  const canceled = new Promise<never>((_, reject) => {
    stop = afterFunc(ctx, () => reject(ctx.err()));
  });
  canceled.catch(() => undefined);
  const work = (async () => fn(txCtx, tx))();
  work.catch(() => undefined); // raced below; its rejection is reported through the race
  let result: T;
  try {
    result = await Promise.race([work, canceled]);
    const err = ctx.err();
    if (err !== null) throw err;
  } catch (error) {
    ended = true;
    stop();
    cancelTx();
    // ROLLBACK only once the running statement settled and its cancel landed.
    const fate = await queue;
    if (fate === "gone") throw ctx.err() ?? error;
    const rolledBack = await rollBack(reserved);
    await settle(sql, reserved, rolledBack === "reuse" ? await fateAfterEnd(fate) : rolledBack);
    throw ctx.err() ?? error;
  }
  ended = true;
  stop();
  cancelTx(); // a statement fn did not await is canceled now; COMMIT waits for it below
  const fate = await queue;
  if (fate === "gone") throw notCommitted();
  // COMMIT is not canceled: a cancel racing it could leave the caller unsure whether it committed.
  let command: unknown;
  try {
    command = (await reserved.unsafe("commit")).command;
  } catch (error) {
    await settle(sql, reserved, isConnectionError(error) ? "gone" : "retire");
    // The transaction's SET LOCAL statement_timeout covers COMMIT too: at the
    // deadline the server refuses it, and the transaction is rolled back.
    if (timedOutAtDeadline(ctx, error)) throw DeadlineExceeded;
    throw error;
  }
  await settle(sql, reserved, await fateAfterEnd(fate));
  // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not an error.
  if (command === "ROLLBACK") throw notCommitted();
  return result;
}

function notCommitted(): Error {
  return new Error(
    `${FN}: the transaction was rolled back, not committed: a statement through tx failed ` +
      "(its error was caught, or fn returned before it finished); let the error propagate and await every statement",
  );
}

/** How many times ROLLBACK is sent when the server refuses it. */
const ROLLBACK_ATTEMPTS = 3;

/**
 * rollBack ends the transaction: "reuse" when the first ROLLBACK succeeded,
 * "retire" when it was refused (a late cancel, or a statement_timeout of our
 * SET LOCAL, can stop a ROLLBACK too: 57014; the transaction is then still
 * open, so it is sent again, up to ROLLBACK_ATTEMPTS times), "gone" when the
 * connection is.
 */
async function rollBack(reserved: ReservedSql): Promise<Fate> {
  for (let attempt = 0; attempt < ROLLBACK_ATTEMPTS; attempt++) {
    const error = await reserved.unsafe("rollback").then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error === undefined) return attempt === 0 ? "reuse" : "retire";
    if (isConnectionError(error)) return "gone";
  }
  return "retire"; // settle's retire sends ROLLBACK again before it gives up
}
