import type { Context } from "./context.js";
import type { Listener, Owner, ChildNode } from "./cancel.js";
import { attach, unlink } from "./cancel.js";
import { MAX_TIMER_MS } from "./deadline.js";
import { checkContext, checkNumber } from "./validate.js";

type Timer = ReturnType<typeof setTimeout>;

/** Sleeper is one pending sleep: a timer, and a place in its context's list of children. */
class Sleeper implements Listener {
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  /** Set while waiting; cleared when the timer fires or the context is done. */
  _t: Timer | null = null;
  constructor(
    /** When to wake, in epoch ms (Infinity: only the context ends the sleep). */
    readonly _at: number,
    readonly _resolve: () => void,
    readonly _reject: (err: Error) => void,
  ) {}

  _fire(err: Error): void {
    if (this._t !== null) clearTimeout(this._t);
    this._t = null;
    this._reject(err);
  }
}

/** wait starts, or for a long sleep re-starts, the sleeper's timer; like setTimeout, it keeps Node's process alive. */
function wait(s: Sleeper): void {
  const left = s._at - Date.now();
  s._t = left > MAX_TIMER_MS ? setTimeout(wait, MAX_TIMER_MS, s) : setTimeout(wake, left, s);
}

function wake(s: Sleeper): void {
  s._t = null;
  const o = s._owner;
  if (o !== null) unlink(o, s);
  s._resolve();
}

/** sleepUntil is sleep after its arguments were checked. */
function sleepUntil(ctx: Context, at: number): Promise<void> {
  const err = ctx.err();
  if (err !== null) return Promise.reject(err);
  return new Promise<void>((resolve, reject) => {
    const s = new Sleeper(at, resolve, reject);
    attach(s, ctx);
    // attach rejects at once if ctx turned out to be done.
    if (s._owner !== null || ctx.done() === null) wait(s);
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
  checkContext("sleep(ctx, ms)", ctx, "ctx");
  checkNumber("sleep(ctx, ms)", ms, "ms");
  return sleepUntil(ctx, Date.now() + Math.max(ms, 0));
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
  checkContext("ticker(ctx, ms)", ctx, "ctx");
  checkNumber("ticker(ctx, ms)", ms, "ms");
  if (!(ms > 0)) {
    throw new RangeError(
      `ticker(ctx, ms): ms must be positive, got ${ms}; pass the period in milliseconds`,
    );
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
