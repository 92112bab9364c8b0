import type { Context } from "./context.js";
import { binder } from "./async-binder.js";
import { withCancelCause } from "./cancel.js";
import { checkContext, checkOptions, describeValue } from "./validate.js";

const ASYNC_DISPOSE: typeof Symbol.asyncDispose =
  Symbol.asyncDispose ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);

/**
 * GroupOptions configures {@link group}.
 *
 * @example
 * ```ts
 * const g = group(ctx, { limit: 4 }); // at most four downloads at once
 * ```
 */
export interface GroupOptions {
  /**
   * The most tasks that run at once; further tasks wait their turn in the
   * order `go()` was called. A positive integer, or `Infinity` (the default).
   */
  limit?: number;
}

/**
 * Task is a job of a {@link Group}: it gets the group's context and should
 * stop when that context is done. It may return a promise; a rejection or a
 * synchronous throw is a failure.
 *
 * @example
 * ```ts
 * const fetchUser: Task = async (ctx) => {
 *   users.push(await api.user(ctx, id));
 * };
 * g.go(fetchUser);
 * ```
 */
export type Task = (ctx: Context) => unknown;

/**
 * Group runs related tasks under one context, Go's `errgroup.WithContext`:
 * the first task to fail cancels the others, with its error as the cause.
 * Make one with {@link group}.
 *
 * @example
 * ```ts
 * const g: Group = group(ctx);
 * g.go((ctx) => saveProfile(ctx, user));
 * g.go((ctx) => sendWelcome(ctx, user));
 * await g.wait();
 * ```
 */
export interface Group extends AsyncDisposable {
  /** The group's context: canceled by the first failure, by disposal, or once {@link Group.wait} has seen every task settle. */
  readonly ctx: Context;
  /**
   * go starts `task(ctx)` before it returns, or later, in order, when a slot
   * frees up if `limit` tasks are running. A synchronous throw counts as a
   * failure; go itself throws only for a `task` that is not a function.
   */
  go(task: Task): void;
  /**
   * wait resolves once every task given to `go()` so far (queued ones
   * included) has settled, or rejects with the first failure; then it
   * cancels the group's context.
   */
  wait(): Promise<void>;
}

/**
 * group returns a {@link Group} whose tasks share a child of `parent`. The
 * first task that rejects (or throws) cancels the group's context with its
 * error as the cause, so the others can stop early; `wait()` rejects with
 * that first error once every task has settled. Later failures are dropped,
 * as in Go's errgroup. A group never causes an unhandled rejection: failures
 * are reported through `wait()` or disposal only. Tasks queued behind
 * `limit` start in order, one after another in a loop, so any number of
 * tasks that throw at once cannot overflow the stack.
 *
 * With `await using`, leaving the scope cancels the group's context, waits
 * for every task (queued ones included), then throws the first failure that
 * `wait()` did not report, including one a task raised while stopping. A
 * task that rejects with the cancellation disposal asked for (`ctx.err()`)
 * only did as told and is no failure. When the scope itself threw, the
 * runtime throws a `SuppressedError` whose `error` is the task failure and
 * whose `suppressed` is the scope's error (where `SuppressedError` is not
 * built in, TypeScript's and esbuild's `await using` make an `Error` with
 * those two fields and `name` `"SuppressedError"`).
 *
 * `options` must be an object or left out; anything else is a TypeError.
 *
 * @example
 * ```ts
 * await using g = group(ctx, { limit: 4 });
 * for (const url of urls) g.go((ctx) => download(ctx, url));
 * await g.wait(); // rejects with the first failure; the other downloads were canceled
 * ```
 */
export function group(parent: Context, options?: GroupOptions): Group {
  const fn = "group(parent, options)";
  checkContext(fn, "parent", parent);
  const limit = checkOptions(fn, options)?.limit ?? Infinity;
  if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 1))) {
    throw new TypeError(
      `${fn}: options.limit must be a positive integer or Infinity, got ${describeValue(limit)}`,
    );
  }
  const [ctx, cancel] = withCancelCause(parent);
  /** Tasks waiting for a slot, in go() order; `head` is the next to start. Emptied whenever all have started. */
  const queue: (Task | undefined)[] = [];
  let head = 0;
  /** Tasks started and not yet settled. */
  let running = 0;
  /** True while pump's loop runs, so a go() or a failure inside a task's synchronous part queues instead of recursing. */
  let pumping = false;
  /** Set by the first failure; `reported` once wait() or disposal has thrown it. */
  let failure: { err: unknown } | null = null;
  let reported = false;
  /** Set when disposal begins: from then on a rejection with the group's own ctx.err() is obedience, not failure. */
  let disposing = false;
  /** Created by the first waiter while tasks run or wait; resolved when the last one settles. */
  let idle: Promise<void> | null = null;
  let wake: (() => void) | null = null;

  const settled = (): Promise<void> =>
    running === 0 && head === queue.length
      ? Promise.resolve()
      : (idle ??= new Promise<void>((resolve) => {
          wake = resolve;
        }));

  const fail = (err: unknown): void => {
    if (failure !== null || (disposing && err === ctx.err())) return;
    failure = { err };
    cancel(err);
  };

  const finish = (): void => {
    running--;
    pump();
  };

  const start = (task: Task): void => {
    running++;
    let result: unknown;
    try {
      result = task(ctx);
    } catch (err) {
      // A synchronous throw settles the task here; pump's loop goes on to the next.
      running--;
      fail(err);
      return;
    }
    Promise.resolve(result).then(finish, (err: unknown) => {
      fail(err);
      finish();
    });
  };

  // One loop starts every task a free slot allows. Reentrant calls (a task's
  // synchronous part calling go(), a cancel run by fail) return at once and
  // leave the work to the loop already running, so the stack stays flat.
  const pump = (): void => {
    if (pumping) return;
    pumping = true;
    try {
      while (running < limit && head < queue.length) {
        const task = queue[head] as Task;
        queue[head++] = undefined;
        start(task);
      }
      if (head === queue.length) queue.length = head = 0;
    } finally {
      pumping = false;
    }
    if (running === 0 && head === queue.length && wake !== null) {
      const resolve = wake;
      idle = wake = null;
      resolve();
    }
  };

  return {
    ctx,
    go(task: Task): void {
      if (typeof task !== "function") {
        throw new TypeError(`group.go(task): task must be a function, got ${describeValue(task)}`);
      }
      // A task that waits for a slot starts from whichever task freed it: bound
      // here, it runs in the async context of this call (async-binder.ts).
      queue.push(binder?.(task as () => void) ?? task);
      pump();
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
      disposing = true;
      cancel(undefined);
      await settled();
      const f = failure as { err: unknown } | null;
      if (f !== null && !reported) {
        reported = true;
        throw f.err;
      }
    },
  };
}
