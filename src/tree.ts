/**
 * The live tree under a context, as plain data: what `taproot-context/testing`'s
 * inspectTree and snapshotTree and `taproot-context/node`'s debug page show.
 * Internal to the package (not exported from `taproot-context`): the shapes
 * may change with any release.
 */
import type { Context } from "./context.js";
import {
  printValue,
  printableDate,
  safeDeadline,
  safeState,
  safeString,
  userDone,
} from "./tree-facts.js";
import {
  isCancelable,
  kindOf,
  labelOf,
  liveChildCount,
  liveChildren,
  parentOf,
} from "./introspect.js";
import type { ContextKind } from "./introspect.js";

export { printValue };
import { checkOptions, describeValue, isContext } from "./validate.js";

/**
 * Birth is what a watcher of the debug hooks learned of a context's
 * creation (`taproot-context/testing` records them while a tracker or the
 * guard is active).
 */
export interface Birth {
  /** Epoch ms of creation. */
  readonly at: number;
  /** Where it was created; null when no watcher asked for stacks. */
  readonly site: { first(): string } | null;
}

/** The installed lookup of births; null (the default) while nothing records them. */
let birthLookup: ((ctx: Context) => Birth | undefined) | null = null;

/** setBirthLookup installs where snapshots find each context's age and creation site (`taproot-context/testing` does). */
export function setBirthLookup(lookup: ((ctx: Context) => Birth | undefined) | null): void {
  birthLookup = lookup;
}

function birthOf(ctx: Context): Birth | undefined {
  return birthLookup === null ? undefined : birthLookup(ctx);
}

/**
 * checkTreeRoot throws a TypeError naming `fn` unless ctx is a Context; the
 * fix points at what a snapshot is for.
 */
export function checkTreeRoot(fn: string, ctx: unknown): asserts ctx is Context {
  const fix = "pass the context whose subtree you want to see, e.g. a server's context";
  if (ctx === null || ctx === undefined) {
    throw new TypeError(`${fn}: ctx is ${String(ctx)}; ${fix}`);
  }
  if (!isContext(ctx)) {
    throw new TypeError(`${fn}: ctx must be a Context, got ${describeValue(ctx)}; ${fix}`);
  }
}

/**
 * ContextNode is a plain-data snapshot of one context and its live subtree,
 * as {@link snapshotTree} returns it: ready for `JSON.stringify`.
 *
 * @example
 * ```ts
 * const late = (n: ContextNode): boolean => (n.remainingMs ?? Infinity) < 100 || n.children.some(late);
 * ```
 */
export interface ContextNode {
  /** What made the context: `withCancel`, `withDeadline`, `withSignal`, `withValue`, `withoutCancel`, `background` or `foreign` (a user's own Context). */
  kind: ContextKind;
  /** The context's `toString()`, e.g. `context.Background.WithCancel`. */
  name: string;
  /** The part of `name` added below the parent node of the snapshot (the whole name at the root). */
  label: string;
  /** The deadline as an ISO string, or null for none. */
  deadline: string | null;
  /** Milliseconds left until the deadline (negative once past), or null for none. */
  remainingMs: number | null;
  /** Whether the context can ever be canceled (false for background, withoutCancel and values over those). */
  cancelable: boolean;
  /** `err()`'s message, or null while live. */
  err: string | null;
  /** What `cause()` returns, printed, or null while live. */
  cause: string | null;
  /** Live child contexts (the ones listed in `children`, before truncation). */
  childCount: number;
  /** Other live registrations on the context: `afterFunc` callbacks and pending `sleep`s. */
  waiting: number;
  /** Milliseconds since creation, or null if the context was created while no tracker or guard was active. */
  ageMs: number | null;
  /** The caller's frame that created the context, when a tracker or the guard recorded it. */
  site: string | null;
  children: ContextNode[];
  /** What `options.annotate` said of this context (e.g. the request it serves), or null. */
  note: string | null;
  /** Children left out by the `maxNodes` or `maxDepth` limit. */
  omitted: number;
}

/**
 * TreeOptions bound the work of {@link snapshotTree} and {@link inspectTree}.
 *
 * @example
 * ```ts
 * inspectTree(app.context, { maxNodes: 200, maxDepth: 4 });
 * ```
 */
export interface TreeOptions {
  /** At most this many nodes in total, a whole number of at least 1 or `Infinity` (default 1,000); the rest are counted in `omitted`. */
  maxNodes?: number;
  /** At most this many levels below the root, a whole number of at least 0 or `Infinity` (default 32). */
  maxDepth?: number;
  /** The time to compute ages and remaining time against, in epoch ms (default `Date.now()`). */
  now?: number;
  /**
   * annotate(ctx) may name what a context is for (`note`, e.g. "GET /users/7")
   * and when it started (`since`, epoch ms, used for its age when no tracker
   * or guard saw it created). Called once per node shown.
   */
  annotate?: (ctx: Context) => { note?: string; since?: number } | undefined;
}

/**
 * snapshotTree returns a plain-data snapshot of `ctx` and the live contexts
 * under it: each node's kind, name, deadline, err and cause, live child count
 * and, when a tracker or the guard of `taproot-context/testing` saw it created, its
 * age and creation site. It walks only the live tree (finished children are
 * already detached), reads no stack trace, and stops at `maxNodes`.
 *
 * Only cancelable contexts own children: the children of a context that can
 * never be canceled (`background()`, `withoutCancel`) are not linked to it
 * and so are not listed; snapshot a server's or worker's own context instead.
 *
 * @example
 * ```ts
 * res.setHeader("content-type", "application/json");
 * res.end(JSON.stringify(snapshotTree(app.context)));
 * ```
 */
export function snapshotTree(ctx: Context, options?: TreeOptions): ContextNode {
  return snapshot("snapshotTree(ctx, options)", ctx, options);
}

/**
 * snapshot is snapshotTree, with `fn` naming the function the user called
 * (snapshotTree or inspectTree) for the errors.
 */
export function snapshot(fn: string, ctx: Context, options: TreeOptions | undefined): ContextNode {
  checkTreeRoot(fn, ctx);
  checkOptions(fn, options);
  const maxNodes = checkLimit(fn, "maxNodes", options?.maxNodes ?? 1_000, 1);
  const maxDepth = checkLimit(fn, "maxDepth", options?.maxDepth ?? 32, 0);
  const now = options?.now ?? Date.now();
  if (typeof now !== "number" || !Number.isFinite(now)) {
    throw new TypeError(
      `${fn}: options.now must be a time in epoch milliseconds, got ${describeValue(now)}; leave it out for Date.now()`,
    );
  }
  const annotate = options?.annotate;
  if (annotate !== undefined && typeof annotate !== "function") {
    throw new TypeError(
      `${fn}: options.annotate must be a function (ctx) => ({ note, since }) | undefined, got ${describeValue(annotate)}`,
    );
  }
  let budget = maxNodes - 1;
  const name = safeString(ctx);
  const root = nodeOf(ctx, name, name, now, annotate);
  // Breadth first, so that a limit cuts the deepest levels, not a whole branch.
  const queue: [ContextNode, Context, number][] = [[root, ctx, 0]];
  for (let i = 0; i < queue.length; i++) {
    const [node, c, depth] = queue[i]!;
    const kids = childrenOf(c);
    node.childCount = kids.length;
    node.waiting = Math.max(0, (isCancelable(c) ? liveChildCount(c) : 0) - kids.length);
    for (const k of kids) {
      if (budget <= 0 || depth >= maxDepth) {
        node.omitted = kids.length - node.children.length;
        break;
      }
      budget--;
      // The parent's name and the labels below it are the child's toString(), without
      // walking the whole chain again for each node (quadratic on a deep chain).
      const label = relativeLabel(k, c);
      const kname = label === null ? safeString(k) : node.name + label;
      const child = nodeOf(k, kname, label ?? kname, now, annotate);
      node.children.push(child);
      queue.push([child, k, depth + 1]);
    }
  }
  return root;
}

/**
 * checkLimit returns a limit of snapshotTree's options, or throws a
 * TypeError naming `fn`: a whole number of at least `least`, or Infinity.
 * NaN or a string would otherwise compare false everywhere and silently
 * mean no limit at all.
 */
function checkLimit(fn: string, name: string, limit: unknown, least: number): number {
  if (limit === Infinity || (Number.isInteger(limit) && (limit as number) >= least)) {
    return limit as number;
  }
  throw new TypeError(
    `${fn}: options.${name} must be a whole number of at least ${least}, or Infinity for no limit, got ${describeValue(limit)}`,
  );
}

function nodeOf(
  ctx: Context,
  name: string,
  label: string,
  now: number,
  annotate: TreeOptions["annotate"],
): ContextNode {
  const a = annotate?.(ctx);
  const since = birthOf(ctx)?.at ?? a?.since;
  const d = safeDeadline(ctx);
  const [err, why] = safeState(ctx);
  const birth = birthOf(ctx);
  return {
    kind: kindOf(ctx),
    name,
    label,
    deadline: d === undefined ? null : printableDate(d),
    remainingMs: d === undefined ? null : d - now,
    cancelable: canBeCanceled(ctx),
    err: err === null ? null : typeof err.message === "string" ? err.message : printValue(err),
    cause: err === null ? null : printValue(why),
    childCount: 0,
    waiting: 0,
    ageMs: since === undefined ? null : now - since,
    site: birth?.site?.first() ?? null,
    note: a?.note ?? null,
    children: [],
    omitted: 0,
  };
}

/**
 * childrenOf returns the live cancelable contexts directly under ctx. A
 * context that is not a cancelable node (a withValue layer) has its children
 * registered with its nearest cancelable ancestor: keep those whose chain
 * passes through ctx.
 */
function childrenOf(ctx: Context): Context[] {
  if (isCancelable(ctx)) return liveChildren(ctx);
  let src = parentOf(ctx);
  while (src !== null && !isCancelable(src)) src = parentOf(src);
  if (src === null) return [];
  return liveChildren(src).filter((c) => {
    for (let p = parentOf(c); p !== null && p !== src; p = parentOf(p)) if (p === ctx) return true;
    return false;
  });
}

/**
 * relativeLabel returns the part of ctx's toString() below ancestor, built
 * from each node's own label: slicing String(child) by String(ancestor)
 * would break whenever a deadline's remaining time changed between the two
 * calls. Null if ancestor is not on ctx's chain.
 */
function relativeLabel(ctx: Context, ancestor: Context): string | null {
  let s = "";
  for (let c: Context | null = ctx; c !== null; c = parentOf(c)) {
    if (c === ancestor) return s;
    const label = labelOf(c);
    if (label === null) return null;
    s = label + s;
  }
  return null;
}

/** canBeCanceled walks up past value layers to the first context that decides: without calling done(), which would allocate. */
function canBeCanceled(ctx: Context): boolean {
  for (let c: Context | null = ctx; c !== null; c = parentOf(c)) {
    const k = kindOf(c);
    if (k === "background" || k === "withoutCancel") return false;
    if (k !== "withValue") return k !== "foreign" || userDone(c) !== null;
  }
  return false;
}
