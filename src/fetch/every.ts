import type { Context } from "../context.js";
import { cause } from "../cancel.js";
import { nextTick, sleepUntil } from "../timers.js";
import { checkContext, checkMs, checkOptions, describeValue } from "../validate.js";
import { withoutCancel } from "../without-cancel.js";

/**
 * EveryOptions configure {@link every}.
 *
 * @example
 * ```ts
 * await every(ctx, 5_000, refreshCache, {
 *   inflight: "finish", // a refresh in progress completes before the worker stops
 *   onError: (err) => log.warn("refresh failed", err),
 * });
 * ```
 */
export interface EveryOptions {
  /**
   * What a run in progress sees when `ctx` is canceled: `"cancel"` (default)
   * gives it `ctx` itself, so it is canceled with the worker; `"finish"` gives
   * it a context with `ctx`'s values that is never canceled, so the run
   * completes and the worker stops after it.
   */
  inflight?: "cancel" | "finish";
  /** Run once at once instead of waiting one interval first. Default `false`. */
  immediate?: boolean;
  /**
   * onError reports a run that threw or rejected (other than with its
   * context's own cancellation); the worker keeps going. Default:
   * `console.error`.
   */
  onError?: (err: unknown) => void;
}

/**
 * every runs `fn(ctx, tick)` every `ms` milliseconds until `ctx` is done, and
 * returns a promise that resolves once the worker has fully stopped: no run in
 * progress and no timer left. It is the background worker of a service:
 * a poller, a cache refresher, a heartbeat. It needs no Node module, so it
 * runs on every runtime the core does; `taproot-context/node` re-exports it.
 *
 * Runs never overlap: a run that takes longer than `ms` pushes the next one to
 * the next interval boundary, and missed boundaries are skipped rather than
 * run back to back. A run that fails is reported to `options.onError` and the
 * worker carries on. When `ctx` is canceled, no new run starts; the run in
 * progress is canceled or finishes, as `options.inflight` says.
 *
 * `ms` must be positive and finite; an interval below 1 ms runs every
 * millisecond, the finest a timer can wait. Runs are scheduled on the
 * monotonic clock (`performance.now()`), so a wall clock stepped back or
 * forward does not stall or hurry the worker. `tick` is the run's scheduled
 * time in epoch ms: the wall clock read once when the worker started, plus
 * the monotonic time since, so ticks are whole intervals apart.
 *
 * A context that breaks its contract (its `err()` throws, or its `done()`
 * settles while `err()` is still `null`) does not stop the worker quietly:
 * the error (or a TypeError naming `every`) goes to `options.onError`, then
 * the worker stops and the promise resolves. `options` must be an object or
 * left out; anything else is a TypeError.
 *
 * @example
 * ```ts
 * const [ctx, stop] = signalContext(background());
 * await every(ctx, 1_000, async (ctx) => {
 *   const job = await queue.receive(ctx);
 *   if (job) await handle(ctx, job);
 * });
 * stop();
 * ```
 */
export function every(
  ctx: Context,
  ms: number,
  fn: (ctx: Context, tick: number) => unknown,
  options?: EveryOptions,
): Promise<void> {
  const name = EVERY;
  checkContext(name, "ctx", ctx);
  checkMs(name, "ms", ms, true);
  if (!Number.isFinite(ms)) {
    throw new RangeError(
      `${name}: ms must be finite, got ${ms}; pass the interval in milliseconds`,
    );
  }
  if (typeof fn !== "function") {
    throw new TypeError(
      `${name}: fn must be a function (ctx, tick) => ..., got ${describeValue(fn)}`,
    );
  }
  const opts = checkOptions(name, options);
  const mode = opts?.inflight ?? "cancel";
  if (mode !== "cancel" && mode !== "finish") {
    throw new TypeError(
      `${name}: options.inflight must be "cancel" or "finish", got ${describeValue(mode)}`,
    );
  }
  const onError = opts?.onError ?? ((err: unknown) => console.error("every: run failed:", err));
  if (typeof onError !== "function") {
    throw new TypeError(
      `${name}: options.onError must be a function, got ${describeValue(onError)}`,
    );
  }
  const immediate = opts?.immediate;
  if (immediate !== undefined && typeof immediate !== "boolean") {
    throw new TypeError(
      `${name}: options.immediate must be true or false, got ${describeValue(immediate)}`,
    );
  }
  return run(
    ctx,
    Math.max(ms, MIN_INTERVAL_MS),
    fn,
    mode === "finish" ? withoutCancel(ctx) : ctx,
    immediate === true,
    onError,
  );
}

/** The shortest interval every keeps: a timer cannot wait less than a millisecond. */
const MIN_INTERVAL_MS = 1;

/** How every's errors name it. */
const EVERY = "every(ctx, ms, fn, options)";

/** run is every's loop, after its arguments were checked; a broken ctx goes to onError and ends it. */
async function run(
  ctx: Context,
  ms: number,
  fn: (ctx: Context, tick: number) => unknown,
  runCtx: Context,
  immediate: boolean,
  onError: (err: unknown) => void,
): Promise<void> {
  // An onError that throws rejects every's promise, as it always has; only a broken ctx is reported to it.
  let threw = false;
  const report = (err: unknown): void => {
    try {
      onError(err);
    } catch (thrown) {
      threw = true;
      throw thrown;
    }
  };
  try {
    await loop(ctx, ms, fn, runCtx, immediate, report);
  } catch (err) {
    if (threw) throw err;
    onError(err);
  }
}

async function loop(
  ctx: Context,
  ms: number,
  fn: (ctx: Context, tick: number) => unknown,
  runCtx: Context,
  immediate: boolean,
  onError: (err: unknown) => void,
): Promise<void> {
  // Ticks are monotonic readings; `epoch` turns them into wall-clock times for fn.
  const epoch = Date.now() - performance.now();
  // The schedule's own time: performance.now(), but never behind the tick a
  // timer last fired for. A fake clock (node:test's mock.timers) fires
  // timers without moving performance.now(); read alone, it would have each
  // wait ask for one more interval than the last.
  let clock = performance.now();
  let next = clock + (immediate ? 0 : ms);
  while (ctx.err() === null) {
    try {
      await sleepUntil(EVERY, ctx, performance.now() + (next - clock));
    } catch (err) {
      // ctx is done: sleep rejected with its err() and has cleared its timer.
      if (ctx.err() !== null) break;
      throw err;
    }
    if (ctx.err() !== null) break;
    const tick = next;
    try {
      await fn(runCtx, epoch + tick);
    } catch (err) {
      const done = ctx.err();
      const expected = done !== null && (err === done || err === cause(ctx));
      if (!expected) onError(err);
    }
    // The next boundary after now: a slow run skips the ticks it overran.
    clock = Math.max(performance.now(), tick);
    next = nextTick(tick + ms, ms, clock);
  }
}
