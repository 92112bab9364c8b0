/**
 * What the bench reads of a context beyond its public API, found by shape
 * instead of by name, so that the same code reads a build whose fields have
 * other names (the "before" build, or a refactored core):
 *
 * - the tree's links, for the floor of the 100k-tree cancel: plain code that
 *   walks the same tree reading each node once;
 * - the lazy parts, for the check that a fresh child holds no Promise and no
 *   AbortController until `done()` or `.signal` asks for one.
 */
import type { CoreModule } from "./build.js";

/** TreeFields names the fields through which a build links a cancelable context's children. */
export interface TreeFields {
  /** The field that holds the error once canceled (null while live). */
  err: string;
  /** The field of a parent that holds its first child. */
  head: string;
  /** The field of a child that holds its next sibling. */
  next: string;
}

type Fields = Record<string, unknown>;

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * treeFields finds the fields by building a root with two children: the
 * root's field that holds one of them, that child's field that holds the
 * other, and a field that is null while live and holds `err()` once
 * canceled. It returns null if the build keeps its tree some other way.
 */
export function treeFields(core: CoreModule): TreeFields | null {
  const [root, cancel] = core.withCancel(core.background());
  const [one] = core.withCancel(root);
  const [two] = core.withCancel(root);
  const r = root as unknown as Fields;
  const head = Object.keys(r).find((k) => r[k] === one || r[k] === two);
  const first = head === undefined ? undefined : (r[head] as Fields);
  const other = first === (one as unknown) ? two : one;
  const next = first === undefined ? undefined : Object.keys(first).find((k) => first[k] === other);
  const live = Object.keys(r).filter((k) => r[k] === null);
  cancel();
  const err = live.find((k) => r[k] === root.err());
  if (head === undefined || next === undefined || err === undefined) return null;
  if (![head, next, err].every((k) => IDENTIFIER.test(k))) return null;
  return { err, head, next };
}

/**
 * walker compiles the floor's walk for `fields`: a depth-first visit of
 * every node under a root, reading each once (the walk of a tree cancel
 * without its writes), returning how many were live. It is compiled with the
 * field names written out, so that it is the same plain code whatever the
 * names are.
 */
export function walker(fields: TreeFields): (root: unknown) => number {
  const { err, head, next } = fields;
  return new Function(
    "root",
    `let live = 0;
    const resume = [];
    let n = root;
    for (;;) {
      if (n.${err} === null) live++;
      const down = n.${head};
      const after = n.${next};
      if (down !== null) {
        if (after !== null) resume.push(after);
        n = down;
      } else if (after !== null) n = after;
      else {
        const r = resume.pop();
        if (r === undefined) break;
        n = r;
      }
    }
    return live;`,
  ) as (root: unknown) => number;
}

/** isLazyPart reports whether `v` is what `done()` or `.signal` creates: a Promise or an abort object. */
function isLazyPart(v: unknown): boolean {
  return v instanceof Promise || v instanceof AbortController || v instanceof AbortSignal;
}

/**
 * lazyParts counts the Promises, AbortControllers and AbortSignals that `ctx`
 * holds in its own fields, or in the fields of a plain object it holds.
 */
export function lazyParts(ctx: unknown): number {
  let found = 0;
  for (const v of Object.values(ctx as Fields)) {
    if (isLazyPart(v)) found++;
    else if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      for (const w of Object.values(v as Fields)) if (isLazyPart(w)) found++;
    }
  }
  return found;
}
