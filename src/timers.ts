import type { Context } from "./context.js";
import { afterFunc } from "./after-func.js";
import { MAX_TIMER_MS } from "./deadline.js";
import { checkContext, checkNumber } from "./validate.js";

type Timer = ReturnType<typeof setTimeout>;

/**
 * sleepUntil is sleep after its arguments were checked. The wait is an
 * afterFunc registration plus a timer, and whichever comes first stops the
 * other: stop() tells the timer whether it won. On a context already done
 * the registration fires at once, and the timer is cleared before it runs.
 */
function sleepUntil(ctx: Context, at: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let t: Timer;
    const stop = afterFunc(ctx, () => {
      clearTimeout(t);
      reject(ctx.err());
    });
    // Like setTimeout, the timer keeps Node's process alive; far times chain timers.
    const wait = (): void => {
      const left = at - Date.now();
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
  return sleepUntil(ctx, Date.now() + ms);
}

/**
 * ticker returns an async iterable that yields the time (epoch ms) every
 * `ms` milliseconds while `ctx` is live, and ends quietly when `ctx` is done.
 * A slow consumer skips the ticks it missed rather than receiving a burst,
 * as with Go's `time.Ticker`.
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
  return ticks(ctx, ms);
}

async function* ticks(ctx: Context, ms: number): AsyncGenerator<number, void, undefined> {
  let next = Date.now() + ms;
  for (;;) {
    try {
      await sleepUntil(ctx, next);
    } catch {
      return;
    }
    if (ctx.err() !== null) return;
    yield Date.now();
    const now = Date.now();
    next += ms;
    while (next <= now) next += ms;
  }
}
