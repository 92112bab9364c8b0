import type { Context } from "../context.js";
import { CancelCtx } from "../cancel-ctx.js";
import { Canceled } from "../errors.js";
import { formatDuration } from "../format.js";
import { kindOf } from "../introspect.js";
import type { ContextKind } from "../introspect.js";
import { collectGarbage } from "./gc.js";
import { monotonicNow, sleepMs, turn } from "./real-time.js";
import { watch } from "./hooks.js";
import type { Birth } from "./hooks.js";
import { describeNode, snapshotTree } from "./tree.js";
import { checkOptions, describeValue } from "../validate.js";

/**
 * Leak is a context that a {@link LeakTracker} saw created and that is still
 * live: not done, and still reachable.
 *
 * @example
 * ```ts
 * for (const leak of await tracker.leaks()) console.log(leak.name, leak.ageMs, leak.stack);
 * ```
 */
export interface Leak {
  readonly context: Context;
  readonly kind: ContextKind;
  /** `context.toString()` at the time of the check. */
  readonly name: string;
  /** Epoch ms of creation. */
  readonly createdAt: number;
  /** Milliseconds between creation and the check. */
  readonly ageMs: number;
  /** The stack trace of the call that created the context, taproot's own frames left out. */
  readonly stack: string;
}

/**
 * TrackOptions configure {@link trackContexts} and {@link checkLeaks}.
 *
 * @example
 * ```ts
 * await checkLeaks(body, { grace: 1_000, ignore: (ctx) => ctx === app.context });
 * ```
 */
export interface TrackOptions {
  /**
   * How long the check waits for live contexts to finish before it reports
   * them, in ms (default 200): work canceled at the end of the body often
   * completes a few event-loop turns later, as does a server's request
   * context after the response is sent. The wait happens only when
   * something is still live.
   */
  grace?: number;
  /** ignore(ctx) returning true leaves a context out of the report (e.g. a server's own long-lived context). */
  ignore?: (ctx: Context) => boolean;
}

/**
 * LeakTracker records every cancelable context created while it is active
 * (on any code path: the test body, a server it calls, timers). Get one from
 * {@link trackContexts}.
 *
 * @example
 * ```ts
 * let tracker: LeakTracker;
 * beforeEach(() => (tracker = trackContexts()));
 * afterEach(() => tracker.assertNoLeaks());
 * ```
 */
export interface LeakTracker extends Disposable {
  /** Whether the tracker still records new contexts. */
  readonly active: boolean;
  /** stop ends the recording; contexts created afterwards are not tracked. Idempotent. */
  stop(): void;
  /**
   * leaks returns the tracked contexts that are still live, after a garbage
   * collection when one can be forced (so contexts nobody can reach any more
   * are not reported), oldest first. It does not stop the tracker.
   */
  leaks(): Promise<Leak[]>;
  /**
   * assertNoLeaks stops the tracker and resolves if every context it
   * recorded is done or garbage; else, after waiting up to `grace` ms for
   * them to finish, it rejects with a {@link LeakError} listing each one with
   * its `toString()`, age and creation stack. Once reported, each leaked
   * context is canceled (with the LeakError as its cause, whatever function
   * made it: `cause(leaked) === error`), so the tickers, sleeps and timers it
   * kept going stop and the test process can exit.
   */
  assertNoLeaks(): Promise<void>;
}

/**
 * LeakError is the error {@link checkLeaks} and {@link LeakTracker.assertNoLeaks}
 * fail with: its message is the readable report, `leaks` the contexts.
 *
 * @example
 * ```ts
 * try {
 *   await checkLeaks(body);
 * } catch (err) {
 *   if (err instanceof LeakError) console.log(inspectTree(err.leaks[0]!.context));
 *   throw err;
 * }
 * ```
 */
export class LeakError extends Error {
  override readonly name = "LeakError";
  readonly leaks: readonly Leak[];
  constructor(message: string, leaks: readonly Leak[]) {
    super(message);
    this.leaks = leaks;
  }
}

interface Record {
  readonly ref: WeakRef<Context>;
  readonly birth: Birth;
}

/**
 * trackContexts starts recording the cancelable contexts created from now on
 * (withCancel, withCancelCause, withDeadline*, withTimeout*, withSignal,
 * and those `taproot-context/node` creates) and returns the tracker. It holds them
 * only through `WeakRef`s, so tracking never keeps a context alive. Call
 * `assertNoLeaks()` at the end of the test, or `stop()` in an `after` hook
 * if the test may end early. Every active tracker sees every creation: run
 * leak-checked tests one at a time (the default in node:test, Vitest and
 * Jest within a file).
 *
 * @example
 * ```ts
 * test("the worker stops with its context", async () => {
 *   const tracker = trackContexts();
 *   const [ctx, cancel] = withCancel(background());
 *   const done = worker(ctx);
 *   cancel();
 *   await done;
 *   await tracker.assertNoLeaks();
 * });
 * ```
 */
export function trackContexts(options?: TrackOptions): LeakTracker {
  return track("trackContexts(options)", options);
}

/** track is trackContexts, with `fn` naming the function the user called for the errors. */
function track(fn: string, options: TrackOptions | undefined): LeakTracker {
  checkOptions(fn, options);
  const grace = options?.grace ?? 200;
  if (typeof grace !== "number" || !(grace >= 0)) {
    throw new TypeError(
      `${fn}: options.grace must be a number of milliseconds, zero or more, got ${describeValue(grace)}`,
    );
  }
  const ignore = options?.ignore;
  if (ignore !== undefined && typeof ignore !== "function") {
    throw new TypeError(
      `${fn}: options.ignore must be a function (ctx) => boolean, got ${describeValue(ignore)}; leave it out to report every leak`,
    );
  }
  const records: Record[] = [];
  // Each tracked context's cancel function, to stop what leaked once it is reported. A WeakMap
  // entry lives only as long as its key, so holding the cancel (which reaches the context)
  // here never keeps a context alive: garbage is still told apart from leaks. Set by the
  // created hook; each entry goes with its context.
  const cancels = new WeakMap<Context, (...args: never[]) => void>();
  let unwatch: (() => void) | null = watch({
    stacks: true,
    childLimit: Infinity,
    created(ctx, cancel, birth) {
      records.push({ ref: new WeakRef(ctx), birth });
      cancels.set(ctx, cancel);
    },
  });
  const stop = (): void => {
    unwatch?.();
    unwatch = null;
  };
  const live = (): Leak[] => {
    const now = Date.now();
    const out: Leak[] = [];
    for (const r of records) {
      const ctx = r.ref.deref();
      if (ctx === undefined || ctx.err() !== null || ignore?.(ctx) === true) continue;
      out.push({
        context: ctx,
        kind: kindOf(ctx),
        name: String(ctx),
        createdAt: r.birth.at,
        ageMs: now - r.birth.at,
        stack: r.birth.site?.text("    ") ?? "    (no stack trace)",
      });
    }
    return out;
  };
  const leaks = async (): Promise<Leak[]> => {
    // A WeakRef keeps its target alive until the current job ends, so collect on a fresh turn.
    await turn();
    if (live().length === 0) return [];
    await collectGarbage();
    return live();
  };
  return {
    get active() {
      return unwatch !== null;
    },
    stop,
    [Symbol.dispose]: stop,
    leaks,
    async assertNoLeaks() {
      stop();
      const until = monotonicNow() + grace;
      let found = await leaks();
      while (found.length > 0 && monotonicNow() < until) {
        found = [];
        await sleepMs(Math.min(20, Math.max(1, until - monotonicNow())));
        found = await leaks();
      }
      if (found.length > 0) {
        const error = new LeakError(report("assertNoLeaks()", found, records.length), found);
        // Reported, then stopped: a leaked ticker or timer must not keep the test runner alive.
        for (const leak of found) stopLeak(leak.context, cancels.get(leak.context), error);
        throw error;
      }
    },
  };
}

/**
 * checkLeaks runs `fn` and resolves with its result if every cancelable
 * context created while it ran is done or unreachable by the time it settles
 * (waiting up to `grace` ms, default 200, for stragglers). Otherwise it
 * rejects with a {@link LeakError} whose message lists each live context with
 * its `toString()`, age and creation stack trace, and then cancels each of
 * them (the LeakError is the cause, whatever function made it), so a leaked
 * ticker or timer does not keep the test runner from finishing. If `fn`
 * itself throws, that error is rethrown unchanged. Options that are not an
 * object, a bad `grace` or an `ignore` that is not a function are a
 * `TypeError` naming checkLeaks. It is a plain async function: use it in
 * node:test, Vitest or Jest alike.
 *
 * @example
 * ```ts
 * import { test } from "node:test";
 * import { checkLeaks } from "taproot-context/testing";
 *
 * test("fetchAll cancels the slow calls", () =>
 *   checkLeaks(async () => {
 *     await fetchAll(background(), urls);
 *   }));
 * ```
 */
export async function checkLeaks<T>(
  fn: () => T | PromiseLike<T>,
  options?: TrackOptions,
): Promise<T> {
  if (typeof fn !== "function") {
    throw new TypeError(
      `checkLeaks(fn, options): fn must be a function, got ${fn === null ? "null" : typeof fn}; pass the test body, e.g. checkLeaks(async () => { ... })`,
    );
  }
  const tracker = track("checkLeaks(fn, options)", options);
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    tracker.stop();
    throw err;
  }
  try {
    await tracker.assertNoLeaks();
  } catch (err) {
    if (err instanceof LeakError) {
      err.message = err.message.replace(/^assertNoLeaks\(\)/, "checkLeaks(fn)");
      if (err.stack !== undefined) err.stack = `LeakError: ${err.message}`;
    }
    throw err;
  }
  return result;
}

/**
 * stopLeak cancels a leaked context with the LeakError as its cause. Most
 * cancel functions ignore their argument (only withCancelCause's records
 * one), so one of ours is canceled through the engine, as its own cancel
 * would, but with that cause; any other goes through the cancel function.
 */
function stopLeak(
  ctx: Context,
  cancel: ((...args: never[]) => void) | undefined,
  error: LeakError,
): void {
  try {
    if (ctx instanceof CancelCtx) ctx._cancel(Canceled, error);
    else (cancel as ((cause?: unknown) => void) | undefined)?.(error);
  } catch {
    // A context the user froze cannot be canceled; the report names it, and is what the test fails with.
  }
}

function report(fn: string, leaks: Leak[], tracked: number): string {
  const n = leaks.length;
  const lines = [
    `${fn}: ${n} of the ${tracked} context${tracked === 1 ? "" : "s"} created while tracking ${n === 1 ? "is" : "are"} still live (not done, still reachable):`,
  ];
  leaks.forEach((l, i) => {
    const node = snapshotTree(l.context, { maxNodes: 1 });
    lines.push("");
    lines.push(`${i + 1}. ${l.name}`);
    lines.push(
      `   ${describeNode(node)}${node.ageMs === null ? ` · age ${formatDuration(l.ageMs)}` : ""}`,
    );
    lines.push("   created at:");
    lines.push(l.stack.replace(/^/gm, "   "));
  });
  lines.push("");
  lines.push(
    "Cancel each context when its work ends: call its cancel function on every path (or declare it with `using`), or cancel a parent. A context created by a server or a timer still running means that work has not stopped yet: await it before the check.",
  );
  return lines.join("\n");
}
