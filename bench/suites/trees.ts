/**
 * Cancel a tree of 100,000 descendants, in three shapes and two heap states,
 * with the floor of merely reading each node once.
 *
 * Each shape runs in a child process of its own (tree-shape.ts), so that each
 * starts from a fresh heap. A 100k-node walk is bound by memory, and how fast
 * memory answers depends on where the nodes landed: after this process's
 * other suites, the same walk (taproot's or plain code's) can cost three or
 * four times as much. The floor rows show that cost alongside.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { acChild, anyChild } from "../baselines.js";
import type { Build } from "../build.js";
import { medianOf, once, settle, type Once } from "../harness.js";
import { options } from "../options.js";
import { header, record, row, setPhase, warnings } from "../report.js";
import { buildShape, SHAPES, TOTAL, type Shape, type ShapeResult } from "./tree-shape.js";

const RUN = fileURLToPath(new URL("../run.ts", import.meta.url));

const LABEL: Record<Shape, string> = {
  flat: "flat: 100,000 children of one root",
  "10-way": "10-way: complete 10-ary tree of 100,000 nodes",
  chain: "chain: 100 chains of depth 1000 under one root",
};

/** runShape measures one shape of `build` in a fresh process. */
function runShape(build: Build, shape: Shape): ShapeResult {
  const args = [...process.execArgv, "--no-warnings", RUN, "--tree-shape", shape];
  args.push("--dist", build.dist);
  if (options.quick) args.push("--quick");
  if (!options.alternatives) args.push("--taproot-only");
  const out = execFileSync(process.execPath, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, TAPROOT_BENCH_BEFORE: "" },
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as ShapeResult;
}

/** orNull is the median of `pairs`, or null where nothing was measured. */
const orNull = (pairs: Once[]) => (pairs.length === 0 ? null : medianOf(pairs));

export async function trees(build: Build): Promise<void> {
  setPhase("cancel tree");
  header("Cancel a tree of 100,000 descendants (ms per cancel(); every err() set on return)");
  let liveAfterCancel = 0;
  for (const shape of SHAPES) {
    const r = runShape(build, shape);
    warnings.push(...r.warnings);
    const clean = medianOf(r.clean.cancels);
    const amid = medianOf(r.amid.cancels);
    const note = r.a.length === 0 ? "" : `(a), (b) ${r.n / 1000}k ×${TOTAL / r.n}`;
    // One group per shape: a row is matched to the "before" build's by group and name.
    const group = `tree ${shape}`;
    const floor = "… floor: the same walk, only reading";
    row({
      group,
      name: LABEL[shape],
      unit: "ms",
      taproot: clean,
      a: orNull(r.a),
      b: orNull(r.b),
      note,
    });
    row({ group, name: floor, unit: "ms", taproot: orNull(r.clean.walks) });
    row({
      group,
      name: "… built among garbage (contexts copied by the GC)",
      unit: "ms",
      taproot: amid,
    });
    row({ group, name: `… ${floor}`, unit: "ms", taproot: orNull(r.amid.walks) });
    record(`tree.${shape}.clean`, clean);
    record(`tree.${shape}.amid`, amid);
    liveAfterCancel += r.liveAfterCancel;
  }
  record("tree.liveAfterCancel", liveAfterCancel);

  // A single chain of depth 1000, for reference.
  const { core } = build;
  const tt: Once[] = [];
  const ta: Once[] = [];
  const tb: Once[] = [];
  for (let r = 0; r < 11; r++) {
    const [root, cancel] = core.withCancel(core.background());
    buildShape("chain", 1000, root, (p) => core.withCancel(p)[0]);
    tt.push(once(cancel));
    if (!options.alternatives) continue;
    const [aroot, acancel] = acChild(new AbortController().signal);
    buildShape("chain", 1000, aroot, (p) => acChild(p)[0]);
    ta.push(once(acancel));
    const [broot, bcancel] = anyChild(new AbortController().signal);
    buildShape("chain", 1000, broot, (p) => anyChild(p)[0]);
    tb.push(once(bcancel));
  }
  row({
    group: "tree",
    name: "reference: one chain of depth 1000",
    unit: "ms",
    taproot: medianOf(tt),
    a: orNull(ta),
    b: orNull(tb),
  });
  await settle();
}
