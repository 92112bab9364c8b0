import { formatDuration } from "./format.js";
import type { ContextNode, TreeOptions } from "./tree.js";
import { checkTreeRoot, snapshotTree } from "./tree.js";
import type { Context } from "./context.js";

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
  checkTreeRoot("inspectTree(ctx)", ctx);
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
