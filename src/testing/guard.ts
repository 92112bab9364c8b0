import type { Context } from "../context.js";
import { isCancelable, kindOf, parentOf } from "../introspect.js";
import { birthOf, watch } from "./hooks.js";
import { Site } from "./site.js";
import { checkOptions, describeValue } from "../validate.js";

/**
 * TOO_MANY_CHILDREN is the code of the warning the guard emits when one
 * context holds more live children than `childLimit`.
 *
 * @example
 * ```ts
 * process.on("warning", (w) => {
 *   if ((w as TaprootWarning).code === TOO_MANY_CHILDREN) metrics.increment("ctx.fanout");
 * });
 * ```
 */
export const TOO_MANY_CHILDREN = "TAPROOT_TOO_MANY_CHILDREN";

/**
 * LOST_CANCEL is the code of the warning the guard emits when a cancel
 * function is garbage-collected without having been called while its
 * context still held resources. Silence it with
 * `node --disable-warning=TAPROOT_LOST_CANCEL` (Node ≥ 21.3).
 *
 * @example
 * ```ts
 * installGuard({ onWarning: (w) => w.code === LOST_CANCEL && log.error(w.message) });
 * ```
 */
export const LOST_CANCEL = "TAPROOT_LOST_CANCEL";

/**
 * TaprootWarning is what the guard emits: an `Error` named "TaprootWarning"
 * with a `code`, given to `process.emitWarning` (or to `onWarning`).
 *
 * @example
 * ```ts
 * process.on("warning", (w) => {
 *   if (w.name === "TaprootWarning") console.error(String((w as TaprootWarning).context));
 * });
 * ```
 */
export interface TaprootWarning extends Error {
  name: "TaprootWarning";
  code: typeof TOO_MANY_CHILDREN | typeof LOST_CANCEL;
  /** The context the warning is about, when it is still reachable. */
  context?: Context;
}

/**
 * GuardOptions configure {@link installGuard}.
 *
 * @example
 * ```ts
 * installGuard({ childLimit: 50_000, stacks: false });
 * ```
 */
export interface GuardOptions {
  /**
   * Whether to install the guard at all. Default: {@link debugEnabled}(),
   * i.e. on unless `TAPROOT_DEBUG` turns it off, or `NODE_ENV` is
   * `production` and `TAPROOT_DEBUG` does not turn it on.
   */
  enabled?: boolean;
  /** Warn when one context has more live children than this (default `TAPROOT_CHILD_LIMIT` or 10,000). */
  childLimit?: number;
  /** Warn when a cancel function is garbage-collected without having been called while its context still holds a timer, a listener or a place in a live parent (default true). */
  lostCancel?: boolean;
  /**
   * Capture a stack trace at every creation, so warnings name where the
   * context was created (default true). Without it the warnings name only
   * the context.
   */
  stacks?: boolean;
  /** Where warnings go (default `process.emitWarning`). */
  onWarning?: (warning: TaprootWarning) => void;
}

/**
 * Guard is an installed runtime guard, returned by {@link installGuard}.
 *
 * @example
 * ```ts
 * using guard = installGuard({ enabled: true }); // uninstalled at the end of the scope
 * ```
 */
export interface Guard extends Disposable {
  /** Whether the guard is watching (false when it was not enabled, or after uninstall). */
  readonly enabled: boolean;
  /** uninstall stops the guard; the core is back to its no-hooks fast path if nothing else watches. */
  uninstall(): void;
}

const ON = new Set(["1", "true", "on", "yes"]);
const OFF = new Set(["0", "false", "off", "no"]);

/**
 * debugEnabled returns whether the runtime guard is on by default for this
 * environment: `TAPROOT_DEBUG=1` (or `true`, `on`, `yes`) turns it on,
 * `TAPROOT_DEBUG=0` (or `false`, `off`, `no`) turns it off; otherwise it is
 * on unless `NODE_ENV` is `production`.
 *
 * @example
 * ```ts
 * debugEnabled({ NODE_ENV: "production" });                    // false
 * debugEnabled({ NODE_ENV: "production", TAPROOT_DEBUG: "1" }); // true
 * debugEnabled({});                                            // true
 * ```
 */
export function debugEnabled(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.TAPROOT_DEBUG?.trim().toLowerCase();
  if (v !== undefined && ON.has(v)) return true;
  if (v !== undefined && OFF.has(v)) return false;
  return env.NODE_ENV !== "production";
}

let current: Guard | null = null;

/**
 * installGuard starts the runtime guard (replacing one installed before) and
 * returns it. While on, it emits a process warning
 * - `TAPROOT_TOO_MANY_CHILDREN` the first time a context has more than
 *   `childLimit` live children (the context analogue of
 *   `MaxListenersExceededWarning`), naming where it was created and where
 *   the last child came from;
 * - `TAPROOT_LOST_CANCEL` when a cancel function is garbage-collected without
 *   having been called while its context is live and still holds a deadline
 *   timer, a listener on a signal, or a place among a live parent's children
 *   (go vet's lostcancel, at run time), naming where it was created.
 *
 * It is on by default in development and off in production: see
 * {@link debugEnabled}. While it is off it installs nothing, and the core
 * pays one null check per context. While on, each cancelable context costs a
 * stack capture and a `FinalizationRegistry` entry.
 *
 * @example
 * ```ts
 * // main.ts: warns in development, costs nothing in production
 * import { installGuard } from "taproot-context/testing";
 * installGuard();
 * ```
 */
export function installGuard(options?: GuardOptions): Guard {
  const fn = "installGuard(options)";
  checkOptions(fn, options);
  for (const flag of ["enabled", "lostCancel", "stacks"] as const) {
    const value = options?.[flag];
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(
        `${fn}: options.${flag} must be true or false, got ${describeValue(value)}`,
      );
    }
  }
  if (options?.onWarning !== undefined && typeof options.onWarning !== "function") {
    throw new TypeError(
      `${fn}: options.onWarning must be a function (warning) => void, got ${describeValue(options.onWarning)}; leave it out to emit process warnings`,
    );
  }
  const enabled = options?.enabled ?? debugEnabled();
  const childLimit = options?.childLimit ?? envLimit() ?? 10_000;
  if (typeof childLimit !== "number" || !(childLimit >= 1)) {
    throw new TypeError(
      `${fn}: options.childLimit must be a number of at least 1, got ${String(childLimit)}; the default is 10000`,
    );
  }
  const emit = options?.onWarning ?? emitProcessWarning;
  current?.uninstall();
  if (!enabled) return { enabled: false, uninstall() {}, [Symbol.dispose]() {} };

  const warned = new WeakSet<Context>();
  const lost =
    options?.lostCancel === false
      ? null
      : new FinalizationRegistry<Held>((held) => {
          const ctx = held.ctx;
          if (ctx.err() !== null || !holdsResources(ctx)) return;
          emit(
            warning(
              ctx,
              LOST_CANCEL,
              `the cancel function of ${String(ctx)} was garbage-collected without being called, while the context is live and ${whatItHolds(ctx)}. Call cancel on every path when the work is done (or declare it with \`using\`). Created at:\n${held.site?.text() ?? "    (no stack trace: stacks are off)"}`,
            ),
          );
        });
  const unwatch = watch({
    stacks: options?.stacks ?? true,
    childLimit,
    created(ctx, cancel, birth) {
      lost?.register(cancel, { ctx, site: birth.site });
    },
    tooManyChildren(parent, count) {
      if (warned.has(parent)) return;
      warned.add(parent);
      const site = birthOf(parent)?.site;
      emit(
        warning(
          parent,
          TOO_MANY_CHILDREN,
          `${String(parent)} has ${count} live children (more than ${childLimit}): children whose cancel is never called stay attached to a long-lived parent. Cancel each child when its work ends (or raise childLimit if this many are really in flight).\nParent created at:\n${site?.text() ?? "    (unknown: created before the guard was installed)"}\nLatest child created at:\n${new Site().text()}`,
        ),
      );
    },
  });
  const guard: Guard = {
    get enabled() {
      return current === guard;
    },
    uninstall() {
      if (current !== guard) return;
      current = null;
      unwatch();
    },
    [Symbol.dispose]() {
      guard.uninstall();
    },
  };
  current = guard;
  return guard;
}

/**
 * What the registry keeps for a cancel function. It holds the context
 * strongly: the cancel function's closure holds it anyway while the function
 * lives, so this only carries it to the callback, and a strong reference
 * costs a third of a WeakRef per context.
 */
interface Held {
  readonly ctx: Context;
  readonly site: Site | null;
}

/** holdsResources tells whether a live context still costs something: its timer or listener, or its place under a live parent. */
function holdsResources(ctx: Context): boolean {
  const k = kindOf(ctx);
  if (k === "withDeadline" || k === "withSignal") return true;
  return linkedParent(ctx) !== null;
}

function whatItHolds(ctx: Context): string {
  const k = kindOf(ctx);
  if (k === "withDeadline") return "its deadline timer is still pending";
  if (k === "withSignal") return "still listens on an AbortSignal";
  return `still attached to its live parent ${String(linkedParent(ctx))}`;
}

/** linkedParent returns the live ancestor that holds ctx among its children, or null. */
function linkedParent(ctx: Context): Context | null {
  for (let p = parentOf(ctx); p !== null; p = parentOf(p)) {
    if (isCancelable(p)) return p.err() === null ? p : null;
    const k = kindOf(p);
    if (k === "foreign") return p.err() === null && p.done() !== null ? p : null;
    if (k !== "withValue") return null;
  }
  return null;
}

function warning(ctx: Context, code: TaprootWarning["code"], message: string): TaprootWarning {
  const w = new Error(message) as TaprootWarning;
  w.name = "TaprootWarning";
  w.code = code;
  Object.defineProperty(w, "context", { value: ctx, enumerable: false, configurable: true });
  return w;
}

function emitProcessWarning(w: TaprootWarning): void {
  process.emitWarning(w);
}

function envLimit(): number | undefined {
  const v = process.env.TAPROOT_CHILD_LIMIT;
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v);
  if (!(n >= 1)) {
    throw new TypeError(
      `installGuard(options): TAPROOT_CHILD_LIMIT must be a number of at least 1, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}
