import type { Context } from "./context.js";
import { withCancelCause } from "./cancel.js";
import { describe } from "./key.js";
import { checkContext } from "./validate.js";

const ASYNC_DISPOSE: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);

/** GroupOptions configures {@link group}. */
export interface GroupOptions {
  /**
   * The most tasks that run at once; further tasks wait their turn in the
   * order `go()` was called. A positive integer, or `Infinity` (the default).
   */
  limit?: number;
}

/** A task of a {@link Group}: it gets the group's context and should stop when that context is done. */
export type Task = (ctx: Context) => unknown;

/**
 * Group runs related tasks under one context, Go's `errgroup.WithContext`:
 * the first task to fail cancels the others, with its error as the cause.
 */
export interface Group extends AsyncDisposable {
  /** The group's context: canceled by the first failure, by disposal, or once {@link Group.wait} has seen every task settle. */
  readonly ctx: Context;
  /** go starts `task(ctx)` now, or when a slot frees up if `limit` tasks are running. A synchronous throw counts as a failure. */
  go(task: Task): void;
  /**
   * wait resolves once every task started so far has settled, or rejects
   * with the first failure; then it cancels the group's context.
   */
  wait(): Promise<void>;
}

/**
 * group returns a {@link Group} whose tasks share a child of `parent`. The
 * first task that rejects (or throws) cancels the group's context with its
 * error as the cause, so the others can stop early; `wait()` rejects with
 * that first error once every task has settled. A group never causes an
 * unhandled rejection: failures are reported through `wait()` only.
 *
 * With `await using`, leaving the scope cancels the group and waits for
 * every task; a failure that `wait()` did not report is thrown there.
 *
 * @example
 * ```ts
 * await using g = group(ctx, { limit: 4 });
 * for (const url of urls) g.go((ctx) => download(ctx, url));
 * await g.wait(); // rejects with the first failure; the other downloads were canceled
 * ```
 */
export function group(parent: Context, options: GroupOptions = {}): Group {
  checkContext("group(parent, options)", parent);
  const limit = options?.limit ?? Infinity;
  if (
    typeof limit !== "number" ||
    !(limit >= 1) ||
    (limit !== Infinity && !Number.isInteger(limit))
  ) {
    throw new TypeError(
      `group(parent, options): options.limit must be a positive integer or Infinity, got ${describe(limit)}`,
    );
  }
  const [ctx, cancel] = withCancelCause(parent);
  const queue: Task[] = [];
  const waiters: Array<[() => void, (err: unknown) => void]> = [];
  let running = 0;
  let failed = false;
  let firstErr: unknown = undefined;
  let reported = false;

  const settle = (): void => {
    if (running > 0 || queue.length > 0 || waiters.length === 0) return;
    cancel(failed ? firstErr : undefined);
    const ws = waiters.splice(0);
    if (failed) reported = true;
    for (const [resolve, reject] of ws) {
      if (failed) reject(firstErr);
      else resolve();
    }
  };

  const finish = (): void => {
    running--;
    const next = queue.shift();
    if (next !== undefined) start(next);
    else settle();
  };

  const fail = (err: unknown): void => {
    if (!failed) {
      failed = true;
      firstErr = err;
      cancel(err);
    }
    finish();
  };

  const start = (task: Task): void => {
    running++;
    let result: unknown;
    try {
      result = task(ctx);
    } catch (err) {
      fail(err);
      return;
    }
    Promise.resolve(result).then(finish, fail);
  };

  const g: Group = {
    ctx,
    go(task: Task): void {
      if (typeof task !== "function") {
        throw new TypeError(`group.go(task): task must be a function, got ${describe(task)}`);
      }
      if (running < limit) start(task);
      else queue.push(task);
    },
    wait(): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        waiters.push([resolve, reject]);
        settle();
      });
    },
    async [ASYNC_DISPOSE](): Promise<void> {
      const unreported = failed && !reported;
      cancel(undefined);
      await new Promise<void>((resolve) => {
        waiters.push([resolve, () => resolve()]);
        settle();
      });
      if (unreported) throw firstErr;
    },
  };
  return g;
}
