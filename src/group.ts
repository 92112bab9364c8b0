import type { Context } from "./context.js";
import { withCancelCause } from "./cancel.js";
import { describeValue } from "./validate.js";
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
  checkContext("group(parent, options)", "parent", parent);
  const limit = options?.limit ?? Infinity;
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 1))) {
    throw new TypeError(
      `group(parent, options): options.limit must be a positive integer or Infinity, got ${describeValue(limit)}`,
    );
  }
  const [ctx, cancel] = withCancelCause(parent);
  const queue: Task[] = [];
  let running = 0;
  /** Set by the first failure; `reported` once wait() has thrown it. */
  let failure: { err: unknown } | null = null;
  let reported = false;
  /** Created by the first waiter while tasks run; resolved when the last one settles. */
  let idle: Promise<void> | null = null;
  let wake: (() => void) | null = null;

  const settled = (): Promise<void> =>
    running === 0
      ? Promise.resolve()
      : (idle ??= new Promise<void>((resolve) => {
          wake = resolve;
        }));

  // A queued task waits for a running one, so no task runs means none is queued.
  const finish = (): void => {
    running--;
    const next = queue.shift();
    if (next !== undefined) start(next);
    else if (running === 0 && wake !== null) {
      wake();
      idle = wake = null;
    }
  };

  const fail = (err: unknown): void => {
    if (failure === null) {
      failure = { err };
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

  return {
    ctx,
    go(task: Task): void {
      if (typeof task !== "function") {
        throw new TypeError(`group.go(task): task must be a function, got ${describeValue(task)}`);
      }
      if (running < limit) start(task);
      else queue.push(task);
    },
    async wait(): Promise<void> {
      await settled();
      const f = failure as { err: unknown } | null;
      cancel(f?.err);
      if (f !== null) {
        reported = true;
        throw f.err;
      }
    },
    async [ASYNC_DISPOSE](): Promise<void> {
      const unreported = reported ? null : failure;
      cancel(undefined);
      await settled();
      if (unreported !== null) throw unreported.err;
    },
  };
}
