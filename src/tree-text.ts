import { formatDuration } from "./format.js";
import type { ContextNode, TreeOptions } from "./tree.js";
import { snapshot } from "./tree.js";
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
  return renderTree(snapshot("inspectTree(ctx, options)", ctx, options));
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
  // A stack of its own, not recursion: a chain of contexts can be deeper than
  // the call stack. Each entry is a node still to print, with the prefix of
  // its line (head) and of its children's (tail), or a line already made
  // (the "… more" that follows a node's children).
  const stack: ([ContextNode, string, string] | string)[] = [[root, "", ""]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    if (typeof top === "string") {
      lines.push(top);
      continue;
    }
    const [n, head, tail] = top;
    lines.push(`${head}${n.label}  ${describeNode(n)}`);
    if (n.omitted > 0) stack.push(`${tail}└── … ${n.omitted} more`);
    // Pushed last to first, so that the first child is printed first.
    for (let i = n.children.length - 1; i >= 0; i--) {
      const last = i === n.children.length - 1 && n.omitted === 0;
      stack.push([
        n.children[i]!,
        tail + (last ? "└── " : "├── "),
        tail + (last ? "    " : "│   "),
      ]);
    }
  }
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
