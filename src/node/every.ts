import { cause, sleep, withoutCancel, type Context } from "../index.js";
import { checkContext, checkMs, describeValue } from "../validate.js";

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
 * a poller, a cache refresher, a heartbeat.
 *
 * Runs never overlap: a run that takes longer than `ms` pushes the next one to
 * the next interval boundary, and missed boundaries are skipped rather than
 * run back to back. A run that fails is reported to `options.onError` and the
 * worker carries on. When `ctx` is canceled, no new run starts; the run in
 * progress is canceled or finishes, as `options.inflight` says. `tick` is the
 * run's scheduled time (epoch ms).
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
  const name = "every(ctx, ms, fn, options)";
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
  const mode = options?.inflight ?? "cancel";
  if (mode !== "cancel" && mode !== "finish") {
    throw new TypeError(
      `${name}: options.inflight must be "cancel" or "finish", got ${describeValue(mode)}`,
    );
  }
  const onError = options?.onError ?? ((err: unknown) => console.error("every: run failed:", err));
  if (typeof onError !== "function") {
    throw new TypeError(
      `${name}: options.onError must be a function, got ${describeValue(onError)}`,
    );
  }
  return run(
    ctx,
    ms,
    fn,
    mode === "finish" ? withoutCancel(ctx) : ctx,
    options?.immediate === true,
    onError,
  );
}

/** run is every's loop, after its arguments were checked. */
async function run(
  ctx: Context,
  ms: number,
  fn: (ctx: Context, tick: number) => unknown,
  runCtx: Context,
  immediate: boolean,
  onError: (err: unknown) => void,
): Promise<void> {
  let next = Date.now() + (immediate ? 0 : ms);
  while (ctx.err() === null) {
    try {
      await sleep(ctx, Math.max(0, next - Date.now()));
    } catch {
      break; // ctx is done: sleep rejects with its err() and has cleared its timer
    }
    if (ctx.err() !== null) break;
    const tick = next;
    try {
      await fn(runCtx, tick);
    } catch (err) {
      const done = ctx.err();
      const expected = done !== null && (err === done || err === cause(ctx));
      if (!expected) onError(err);
    }
    const now = Date.now();
    // The next boundary after now: a slow run skips the ticks it overran.
    next = tick + ms * Math.max(1, Math.ceil((now - tick) / ms));
  }
}
