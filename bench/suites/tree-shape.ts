/**
 * One tree shape, measured in a process of its own (`bench/run.ts
 * --tree-shape SHAPE --dist DIR`), which trees.ts starts and reads the last
 * line of.
 *
 * Each round builds a 100k tree and times either taproot's cancel() or, as
 * the floor, plain code reading each node once (rounds alternate, so that
 * both see the same mix of heap states; a tree read before its cancel would
 * be in the cache). The first two rounds only warm up. Two heap states:
 * "clean", built into an empty young generation, so that the collector later
 * promotes the contexts' pages whole, in the order they were made; and
 * "among garbage", where the young-generation collector copies the contexts
 * out from between other objects, wherever its threads put them.
 */
import { acChild, anyChild } from "../baselines.js";
import type { Build, CoreModule } from "../build.js";
import { walker } from "../fields.js";
import { once, quiet, settle, sink, type Once } from "../harness.js";
import { options } from "../options.js";
import { baseline, warnings, type Warning } from "../report.js";

/** The shapes, as trees.ts labels them. */
export type Shape = "flat" | "10-way" | "chain";
export const SHAPES: Shape[] = ["flat", "10-way", "chain"];

/** The size of a tree. */
export const TOTAL = 100_000;

/** ShapeResult is what a tree-shape process prints: every round's [wall, cpu] in ms. */
export interface ShapeResult {
  shape: Shape;
  clean: { cancels: Once[]; walks: Once[] };
  amid: { cancels: Once[]; walks: Once[] };
  /** The alternatives' cancels, built at `n` nodes and scaled to TOTAL (none with `--taproot-only`). */
  a: Once[];
  b: Once[];
  n: number;
  /** How many descendants still had err() === null when cancel() returned (want 0). */
  liveAfterCancel: number;
  warnings: Warning[];
}

/** buildShape creates `total` descendants under `root` in `shape`, with `child(parentNode)` → node. */
export function buildShape<T>(shape: Shape, total: number, root: T, child: (parent: T) => T): T[] {
  const all: T[] = [];
  if (shape === "flat") {
    for (let i = 0; i < total; i++) all.push(child(root));
  } else if (shape === "10-way") {
    const queue = [root];
    let q = 0;
    while (all.length < total) {
      const p = queue[q++]!;
      for (let k = 0; k < 10 && all.length < total; k++) {
        const c = child(p);
        all.push(c);
        queue.push(c);
      }
    }
  } else {
    // "chain": 100 chains of depth 1000 (or fewer, deeper, if total says so)
    const depth = 1000;
    while (all.length < total) {
      let p = root;
      for (let d = 0; d < depth && all.length < total; d++) {
        p = child(p);
        all.push(p);
      }
    }
  }
  return all;
}

type Context = ReturnType<CoreModule["background"]>;

/**
 * buildTaproot creates `total` withCancel descendants under root in the given
 * shape, calling withCancel directly (as a program's loop would). With
 * `garbage`, it also allocates a short-lived object between two contexts,
 * as a program does, so that the young-generation collector copies the
 * contexts out from among garbage instead of promoting their pages whole.
 */
function buildTaproot(
  core: CoreModule,
  shape: Shape,
  total: number,
  root: Context,
  garbage: boolean,
): Context[] {
  const withCancel = core.withCancel;
  const all: Context[] = [];
  let junk: { i: number; next: number[] | null } | null = null;
  if (shape === "flat") {
    for (let i = 0; i < total; i++) {
      all.push(withCancel(root)[0]);
      if (garbage) junk = { i, next: junk === null ? null : [i, i, i] };
    }
  } else if (shape === "10-way") {
    let q = 0;
    const parents = [root];
    while (all.length < total) {
      const p = parents[q++]!;
      for (let k = 0; k < 10 && all.length < total; k++) {
        const c = withCancel(p)[0];
        all.push(c);
        parents.push(c);
        if (garbage) junk = { i: k, next: junk === null ? null : [k, k, k] };
      }
    }
  } else {
    while (all.length < total) {
      let p = root;
      for (let d = 0; d < 1000 && all.length < total; d++) {
        p = withCancel(p)[0];
        all.push(p);
        if (garbage) junk = { i: d, next: junk === null ? null : [d, d, d] };
      }
    }
  }
  sink.value ^= junk === null ? 0 : 1;
  return all;
}

export async function treeShape({ core, fields }: Build, shape: Shape): Promise<ShapeResult> {
  const WARM = 2;
  const reps = options.quick ? 3 : 7;
  const walk = fields === null ? null : walker(fields);
  let liveAfterCancel = 0;
  const measure = async (garbage: boolean) => {
    const cancels: Once[] = [];
    const walks: Once[] = [];
    for (let r = 0; r < WARM + 2 * reps; r++) {
      await settle();
      const [root, cancel] = core.withCancel(core.background());
      const all = buildTaproot(core, shape, TOTAL, root, garbage);
      await quiet();
      if (r % 2 === 0 || walk === null) {
        const t = once(cancel);
        if (r >= WARM) cancels.push(t);
        for (const c of all) if (c.err() === null) liveAfterCancel++;
      } else {
        const t = once(() => walk(root));
        if (r >= WARM) walks.push(t);
        cancel();
      }
    }
    return { cancels, walks };
  };
  // Compile the builder first: trees built by unoptimized code leave each context's cancel
  // function and result array behind as garbage between the contexts.
  for (let r = 0; r < 20; r++) {
    const [root, cancel] = core.withCancel(core.background());
    buildTaproot(core, shape, 10_000, root, r % 2 === 1);
    cancel();
  }
  const clean = await measure(false);
  const amid = await measure(true);
  await settle();
  /*
   * The alternatives are built smaller and their time scaled to 100k: their cancel is linear
   * (one event dispatch per node) while building them is not. Node's addEventListener walks
   * the whole listener list, so 100k listeners on one signal take minutes to add, and
   * AbortSignal.any flattens its sources (a child at depth d holds d of them).
   */
  const n = 10_000;
  const scale = (t: Once): Once => [(t[0] * TOTAL) / n, (t[1] * TOTAL) / n];
  const a: Once[] = [];
  const b: Once[] = [];
  if (options.alternatives) {
    for (let r = 0; r < 2; r++) {
      const [root, cancel] = acChild(new AbortController().signal);
      baseline(root);
      const all = buildShape(shape, n, root, (p) => acChild(p)[0]);
      await settle();
      a.push(scale(once(cancel)));
      for (const s of all) if (!s.aborted) throw new Error("(a) tree not fully aborted");
    }
    await settle();
    for (let r = 0; r < 2; r++) {
      const [root, cancel] = anyChild(new AbortController().signal);
      const all = buildShape(shape, n, root, (p) => anyChild(p)[0]);
      await settle();
      b.push(scale(once(cancel)));
      for (const s of all) if (!s.aborted) throw new Error("(b) tree not fully aborted");
    }
    await settle();
  }
  return { shape, clean, amid, a, b, n, liveAfterCancel, warnings };
}
