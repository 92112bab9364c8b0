import type { Context } from "../context.js";
import { cause } from "../cancel.js";
import { formatDuration } from "../format.js";
import {
  isCancelable,
  kindOf,
  labelOf,
  liveChildCount,
  liveChildren,
  parentOf,
} from "../introspect.js";
import type { ContextKind } from "../introspect.js";
import { birthOf } from "./hooks.js";

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
  /** At most this many nodes in total (default 1,000); the rest are counted in `omitted`. */
  maxNodes?: number;
  /** At most this many levels below the root (default 32). */
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
  if (ctx === null || ctx === undefined) {
    throw new TypeError(
      `snapshotTree(ctx): ctx is ${String(ctx)}; pass the context whose subtree you want to see, e.g. a server's context`,
    );
  }
  const maxNodes = options?.maxNodes ?? 1_000;
  const maxDepth = options?.maxDepth ?? 32;
  const now = options?.now ?? Date.now();
  let budget = maxNodes - 1;
  const name = safeString(ctx);
  const annotate = options?.annotate;
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
      const kname = safeString(k);
      const child = nodeOf(k, kname, relativeLabel(k, c) ?? kname, now, annotate);
      node.children.push(child);
      queue.push([child, k, depth + 1]);
    }
  }
  return root;
}

/**
 * inspectTree returns a multi-line text rendering of `ctx` and the live
 * contexts under it, one line per context: its `toString()` (relative to its
 * parent below the first line), kind, state (live, or done with err and
 * cause), deadline remaining, live children and, when known, age. Cheap
 * enough to call from a debug endpoint: it reads only the live tree and stops
 * at `maxNodes` (default 1,000).
 *
 * @example
 * ```ts
 * console.log(inspectTree(app.context));
 * // context.Background.WithoutCancel.WithCancel  withCancel · live · 2 children · age 3.2s
 * // ├── .WithDeadline(2026-05-01T12:00:05.000Z [4.2s])  withDeadline · live · deadline in 4.2s · age 812ms
 * // └── .WithCancel  withCancel · live · age 90ms
 * ```
 */
export function inspectTree(ctx: Context, options?: TreeOptions): string {
  if (ctx === null || ctx === undefined) {
    throw new TypeError(
      `inspectTree(ctx): ctx is ${String(ctx)}; pass the context whose subtree you want to see, e.g. a server's context`,
    );
  }
  return renderTree(snapshotTree(ctx, options));
}

/**
 * renderTree returns the text of {@link inspectTree} for a snapshot already taken.
 *
 * @example
 * ```ts
 * const snap = snapshotTree(ctx);
 * console.log(renderTree(snap));
 * ```
 */
export function renderTree(root: ContextNode): string {
  const lines: string[] = [];
  const walk = (n: ContextNode, head: string, tail: string): void => {
    lines.push(`${head}${n.label}  ${describeNode(n)}`);
    n.children.forEach((c, i) => {
      const last = i === n.children.length - 1 && n.omitted === 0;
      walk(c, tail + (last ? "└── " : "├── "), tail + (last ? "    " : "│   "));
    });
    if (n.omitted > 0) lines.push(`${tail}└── … ${n.omitted} more`);
  };
  walk(root, "", "");
  return lines.join("\n");
}

/** describeNode returns the facts of one node after its name: `withDeadline · live · deadline in 4.2s · 3 children · age 1s`. */
export function describeNode(n: ContextNode): string {
  const parts: string[] = [n.kind];
  if (n.note !== null) parts.push(n.note);
  if (n.err === null) parts.push(n.cancelable ? "live" : "never canceled");
  else
    parts.push(
      n.cause !== null && n.cause !== n.err
        ? `done: ${n.err} (cause: ${n.cause})`
        : `done: ${n.err}`,
    );
  if (n.remainingMs !== null)
    parts.push(
      n.remainingMs >= 0
        ? `deadline in ${formatDuration(n.remainingMs)}`
        : `deadline passed ${formatDuration(-n.remainingMs)} ago`,
    );
  if (n.childCount > 0) parts.push(`${n.childCount} ${n.childCount === 1 ? "child" : "children"}`);
  if (n.waiting > 0) parts.push(`${n.waiting} waiting (afterFunc/sleep)`);
  if (n.ageMs !== null) parts.push(`age ${formatDuration(n.ageMs)}`);
  return parts.join(" · ");
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
  const err = ctx.err();
  const birth = birthOf(ctx);
  return {
    kind: kindOf(ctx),
    name,
    label,
    deadline: d === undefined ? null : printableDate(d),
    remainingMs: d === undefined ? null : d - now,
    cancelable: canBeCanceled(ctx),
    err: err === null ? null : err.message,
    cause: err === null ? null : printValue(cause(ctx)),
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
    if (k !== "withValue") return k !== "foreign" || c.done() !== null;
  }
  return false;
}

function safeDeadline(ctx: Context): number | undefined {
  const d = ctx.deadline();
  return d === undefined ? undefined : d.getTime();
}

function printableDate(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms}ms since the epoch`;
}

function safeString(ctx: Context): string {
  try {
    return String(ctx);
  } catch {
    return "<unprintable context>";
  }
}

/** printValue prints a cause: an Error as `Name: message`, anything else as String(v). */
export function printValue(v: unknown): string {
  try {
    if (v instanceof Error) return v.message === "" ? v.name : `${v.name}: ${v.message}`;
    return typeof v === "string" ? v : String(v);
  } catch {
    return "<unprintable>";
  }
}
