/**
 * value(key) found d levels up, against (a) a parent-pointer chain of plain
 * objects (the same walk) and (b) a Map copied at every level; and at depth
 * 100 with cancelable contexts in between, for a key that is set and one
 * that is not.
 */
import { chainGet, valueBaselines } from "../baselines.js";
import type { Build } from "../build.js";
import { perOp, type Timing } from "../harness.js";
import { options } from "../options.js";
import { header, record, row, setPhase } from "../report.js";

export async function values({ core }: Build): Promise<void> {
  setPhase("value");
  header("value(key) found d levels up (ns/op)", "(a) chain", "(b) Map/level");
  const key = core.createKey<string>("request");
  const others = Array.from({ length: 100 }, (_, i) => core.createKey<number>(`k${i}`));
  for (const depth of [1, 10, 100]) {
    // taproot: withValue(key) then depth-1 other values below it; look up from the leaf.
    let ctx = core.withValue(core.background(), key, "r-42");
    for (let i = 1; i < depth; i++) ctx = core.withValue(ctx, others[i]!, i);
    const leaves = [ctx, ctx, ctx, ctx];
    const t = await perOp((n) => {
      let hits = 0;
      for (let i = 0; i < n; i++) if (leaves[i & 3]!.value(key) === "r-42") hits++;
      return hits;
    });
    let a: Timing | undefined;
    let b: Timing | undefined;
    if (options.alternatives) {
      const { chain, map } = valueBaselines(key, "r-42", others, depth);
      const nodes = [chain, chain, chain, chain];
      const maps = [map, map, map, map];
      a = await perOp((n) => {
        let hits = 0;
        for (let i = 0; i < n; i++) if (chainGet(nodes[i & 3]!, key) === "r-42") hits++;
        return hits;
      });
      b = await perOp((n) => {
        let hits = 0;
        for (let i = 0; i < n; i++) if (maps[i & 3]!.get(key) === "r-42") hits++;
        return hits;
      });
    }
    row({ group: "value", name: `value() at depth ${depth}`, unit: "ns", taproot: t, a, b });
    record(`value.depth${depth}`, t);
    if (depth === 100) record("value.chain100", a);
  }
  // Cancelable contexts in between: the walk meets two kinds of node.
  let ctx = core.withValue(core.background(), key, "r-42");
  const cancels: Array<() => void> = [];
  for (let i = 1; i < 100; i++) {
    if (i % 2) {
      const [c, f] = core.withCancel(ctx);
      cancels.push(f);
      ctx = c;
    } else ctx = core.withValue(ctx, others[i]!, i);
  }
  const leaves = [ctx, ctx, ctx, ctx];
  const t = await perOp((n) => {
    let hits = 0;
    for (let i = 0; i < n; i++) if (leaves[i & 3]!.value(key) === "r-42") hits++;
    return hits;
  });
  const miss = core.createKey<string>("missing");
  const tMiss = await perOp((n) => {
    let hits = 0;
    for (let i = 0; i < n; i++) if (leaves[i & 3]!.value(miss) === undefined) hits++;
    return hits;
  });
  row({
    group: "value",
    name: "value() at depth 100, every other level withCancel",
    unit: "ns",
    taproot: t,
  });
  row({
    group: "value",
    name: "… a key nobody set (walks to background)",
    unit: "ns",
    taproot: tMiss,
  });
  for (const f of cancels) f();
}
