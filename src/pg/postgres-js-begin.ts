import type { PendingQuery } from "postgres";
import { afterFunc, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";
import {
  checkSql,
  checkText,
  reserve,
  settle,
  type ContextSql,
  type PostgresSql,
} from "./postgres-js.js";
import {
  execute,
  isConnectionError,
  statementTimeoutMs,
  type Fate,
  type Runner,
} from "./postgres-js-run.js";

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
 * `ctx`'s deadline becomes `SET LOCAL statement_timeout` (pipelined with
 * BEGIN, no extra round trip), so the server ends the transaction's
 * statements at the deadline even if this process dies. Statements through
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
  const name = "begin(ctx, sql, fn)";
  checkContext(name, "ctx", ctx);
  checkSql(name, sql);
  const options = typeof optionsOrFn === "string" ? optionsOrFn : "";
  const fn = typeof optionsOrFn === "string" ? maybeFn : optionsOrFn;
  if (typeof fn !== "function") {
    throw new TypeError(
      `${name}: fn must be a function (ctx, tx) => Promise, got ${describeValue(fn)}`,
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
  const reserved = await reserve(ctx, sql);
  const runner = reserved as unknown as Runner;
  const timeoutMs = statementTimeoutMs(ctx, "begin(ctx, sql, fn)");
  try {
    // One round trip: BEGIN and SET LOCAL are pipelined.
    await Promise.all([
      reserved.unsafe(`begin ${options.replace(/[^a-z ]/gi, "")}`),
      timeoutMs === undefined
        ? undefined
        : reserved.unsafe(`set local statement_timeout = ${timeoutMs}`),
    ]);
  } catch (error) {
    await settle(reserved, isConnectionError(error) ? "gone" : "reuse");
    throw error;
  }
  // Resolves with the last statement's fate once it fully settled (its
  // cancel included): the next statement, and the ROLLBACK, wait for it.
  let queue: Promise<Fate> = Promise.resolve("reuse");
  let ended = false;
  const statement = <R>(build: (r: Runner) => PendingQuery<never>): Promise<R> => {
    if (ended) {
      return Promise.reject(
        new Error(
          "begin(ctx, sql, fn): a statement through tx after the transaction ended; await every statement inside fn",
        ),
      );
    }
    const run = queue.then(() => {
      const err = ctx.err();
      if (err !== null) throw err;
      return execute<R>(ctx, runner, build, undefined, true);
    });
    queue = run.then(
      (outcome) => outcome.fate,
      () => "reuse" as const, // nothing was sent
    );
    return run.then((outcome) => {
      if (!outcome.ok) throw outcome.error;
      return outcome.value as R;
    });
  };
  const tx = ((strings: TemplateStringsArray, ...values: unknown[]) => {
    if (!Array.isArray(strings) || !Array.isArray((strings as { raw?: unknown }).raw)) {
      return Promise.reject(
        new TypeError(
          `begin(ctx, sql, fn): call tx as a tagged template (tx\`select ...\`), got ${describeValue(strings)}`,
        ),
      );
    }
    return statement((r) => r(strings, ...(values as never[])));
  }) as ContextSql;
  tx.unsafe = (text: string, values?: readonly unknown[]) => {
    const bad = checkText("begin(ctx, sql, fn): tx.unsafe(text, values)", text, values);
    if (bad) return Promise.reject(bad);
    return statement((r) => r.unsafe(text, values as never[]) as PendingQuery<never>);
  };

  // fn races ctx: a context that ends between statements ends the transaction too.
  let stop: () => boolean = () => false;
  const canceled = new Promise<never>((_, reject) => {
    stop = afterFunc(ctx, () => reject(ctx.err()));
  });
  canceled.catch(() => undefined);
  const work = (async () => fn(ctx, tx))();
  work.catch(() => undefined); // raced below; its rejection is reported through the race
  let result: T;
  try {
    result = await Promise.race([work, canceled]);
    const err = ctx.err();
    if (err !== null) throw err;
  } catch (error) {
    ended = true;
    stop();
    // ROLLBACK only once the running statement settled and its cancel landed.
    const fate = await queue;
    if (fate === "gone") throw ctx.err() ?? error;
    const rolledBack = await reserved.unsafe("rollback").then(
      () => true,
      (e: unknown) => (isConnectionError(e) ? null : false),
    );
    await settle(
      reserved,
      rolledBack === null ? "gone" : rolledBack && fate === "reuse" ? "reuse" : "retire",
    );
    throw ctx.err() ?? error;
  }
  ended = true;
  stop();
  // COMMIT is not canceled: a cancel racing it could leave the caller unsure whether it committed.
  try {
    await reserved.unsafe("commit");
  } catch (error) {
    await settle(reserved, isConnectionError(error) ? "gone" : "reuse");
    throw error;
  }
  await settle(reserved, "reuse");
  return result;
}
