import type { Context } from "./context.js";
import { afterFunc } from "./after-func.js";
import { MAX_TIMER_MS } from "./deadline.js";
import { checkContext, checkNumber } from "./validate.js";

type Timer = ReturnType<typeof setTimeout>;

/**
 * sleepUntil is sleep after its arguments were checked; `at` is a reading of
 * the monotonic clock (`performance.now()`), so a wall clock stepped back or
 * forward neither stalls nor hurries it. The wait is an afterFunc
 * registration plus a timer, and whichever comes first stops the other:
 * stop() tells the timer whether it won. On a context already done the
 * registration fires at once, and the timer is cleared before it runs.
 */
export function sleepUntil(fn: string, ctx: Context, at: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let t: Timer;
    const stop = afterFunc(ctx, () => {
      clearTimeout(t);
      // A user context whose err() throws must reject the wait, not crash the process from a microtask.
      try {
        // A user context whose done() settles while err() is still null breaks the contract: say so, never reject with null.
        reject(ctx.err() ?? brokenContext(fn));
      } catch (err) {
        reject(err);
      }
    });
    // Like setTimeout, the timer keeps Node's process alive; far times chain timers.
    const wait = (): void => {
      const left = at - performance.now();
      t =
        left > MAX_TIMER_MS
          ? setTimeout(wait, MAX_TIMER_MS)
          : setTimeout(() => {
              if (stop()) resolve();
            }, left);
    };
    wait();
  });
}

/**
 * sleep resolves after `ms` milliseconds, or rejects with `ctx.err()` as soon
 * as `ctx` is done, whichever comes first; a context already done rejects at
 * once. `0` resolves on the next timer turn. Like `setTimeout`, a pending
 * sleep keeps Node's process alive.
 *
 * @example
 * ```ts
 * for (let attempt = 0; ; attempt++) {
 *   try {
 *     return await send(ctx, message);
 *   } catch (err) {
 *     await sleep(ctx, 100 * 2 ** attempt); // rejects with ctx.err() when ctx ends first
 *   }
 * }
 * ```
 */
export function sleep(ctx: Context, ms: number): Promise<void> {
  const fn = "sleep(ctx, ms)";
  checkContext(fn, "ctx", ctx);
  checkNumber(fn, ms, "ms");
  return sleepUntil(fn, ctx, performance.now() + ms);
}

/**
 * The shortest period a ticker keeps: timers cannot fire more often than
 * once a millisecond (setTimeout rounds shorter waits up to 1 ms), and a
 * period too small to change a timestamp would never move the schedule on.
 */
const MIN_PERIOD_MS = 1;

/**
 * ticker returns an async iterable that yields the time (epoch ms,
 * `Date.now()`) every `ms` milliseconds while `ctx` is live, and ends quietly
 * when `ctx` is done. A slow consumer skips the ticks it missed rather than
 * receiving a burst, as with Go's `time.Ticker`.
 *
 * `ms` must be positive; a period below 1 ms ticks every millisecond, the
 * finest a timer can wait. Ticks are scheduled on the monotonic clock
 * (`performance.now()`), so a wall clock stepped back or forward does not
 * stall or hurry them; only the yielded times follow the wall clock.
 *
 * A context that breaks its contract (its `err()` throws, or its `done()`
 * settles while `err()` is still `null`) does not end the loop quietly: the
 * iteration rejects with that error, or a TypeError naming `ticker`.
 *
 * @example
 * ```ts
 * for await (const now of ticker(ctx, 1_000)) {
 *   await pollQueue(ctx, now);
 * }
 * // ctx is done here: the loop ended without an exception
 * ```
 */
export function ticker(ctx: Context, ms: number): AsyncIterable<number> {
  const fn = "ticker(ctx, ms)";
  checkContext(fn, "ctx", ctx);
  checkNumber(fn, ms, "ms");
  if (!(ms > 0)) {
    throw new RangeError(`${fn}: ms must be a positive period, got ${ms}`);
  }
  return ticks(fn, ctx, Math.max(ms, MIN_PERIOD_MS));
}

/**
 * brokenContext is the error for a context whose done() settled while its
 * err() still says it is live: that context breaks the Context contract,
 * and ending quietly would hide it.
 */
function brokenContext(fn: string): TypeError {
  return new TypeError(
    `${fn}: ctx's done() settled but its err() is still null; a Context's err() must return an Error once done() resolves`,
  );
}

/**
 * nextTick returns the first tick of a `period` schedule after `now`, both
 * monotonic readings: boundaries a slow consumer overran are skipped, and the
 * result is always later than `now`.
 */
export function nextTick(next: number, period: number, now: number): number {
  if (next > now) return next;
  const later = next + period * (Math.floor((now - next) / period) + 1);
  return later > now ? later : now + period;
}

async function* ticks(
  fn: string,
  ctx: Context,
  period: number,
): AsyncGenerator<number, void, undefined> {
  // The schedule's own time: performance.now(), but never behind the tick a
  // timer last fired for. A fake clock (node:test's mock.timers) fires
  // timers without moving performance.now(); read alone, it would have each
  // wait ask for one more period than the last.
  let clock = performance.now();
  let next = clock + period;
  for (;;) {
    try {
      await sleepUntil(fn, ctx, performance.now() + next - clock);
    } catch (err) {
      // ctx is done: the loop ends quietly. Anything else is surfaced.
      if (ctx.err() !== null) return;
      throw err;
    }
    if (ctx.err() !== null) return;
    yield Date.now();
    clock = Math.max(performance.now(), next);
    next = nextTick(next + period, period, clock);
  }
}
