/**
 * Roots and reads: `background()` (one frozen object, nothing allocated per
 * call), `err()` on a live context against `signal.aborted`, and the lazy
 * parts a fresh child does not hold.
 */
import type { Build } from "../build.js";
import { lazyParts } from "../fields.js";
import { gc, heapUsed, perOp } from "../harness.js";
import { options } from "../options.js";
import { header, record, row, setPhase } from "../report.js";

export async function rootsAndErr({ core }: Build): Promise<void> {
  setPhase("roots");
  header("Roots and reads (ns/op)");
  const alternatives = options.alternatives;

  // background(): one frozen singleton, nothing allocated per call.
  const bg = core.background;
  const first = bg();
  const tBg = await perOp((n) => {
    let same = 0;
    for (let i = 0; i < n; i++) same += bg() === first ? 1 : 0;
    return same;
  });
  // Heap growth over 1M calls without a gc in between (a 16 B object per call would show 16 MB).
  gc();
  const h0 = heapUsed();
  let distinct = 0;
  for (let i = 0; i < 1e6; i++) if (bg() !== first) distinct++;
  const grew = (heapUsed() - h0) / 1e6;
  row({ group: "roots", name: "background() (same object every call)", unit: "ns", taproot: tBg });
  record("background.distinct", distinct);
  record("background.heapPerCall", grew);
  record("background.unfrozen", Object.isFrozen(first) ? 0 : 1);

  // err() on a live context: 8 contexts round-robin so the load cannot be hoisted out of the loop.
  const [parent, cancelParent] = core.withCancel(core.background());
  const ctxs: Array<ReturnType<typeof core.background>> = [];
  const cancels: Array<() => void> = [];
  for (let i = 0; i < 8; i++) {
    const [c, f] = core.withCancel(parent);
    ctxs.push(c);
    cancels.push(f);
  }
  const tErr = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (ctxs[i & 7]!.err() === null) live++;
    return live;
  });
  const key = core.createKey<number>("k");
  const vctxs = ctxs.map((c) => core.withValue(c, key, 1));
  const tErrV = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (vctxs[i & 7]!.err() === null) live++;
    return live;
  });
  let tAborted;
  let tAbortedAny;
  if (alternatives) {
    const acs: AbortSignal[] = [];
    for (let i = 0; i < 8; i++) acs.push(new AbortController().signal);
    tAborted = await perOp((n) => {
      let live = 0;
      for (let i = 0; i < n; i++) if (!acs[i & 7]!.aborted) live++;
      return live;
    });
    const anys = acs.map((s) => AbortSignal.any([s]));
    tAbortedAny = await perOp((n) => {
      let live = 0;
      for (let i = 0; i < n; i++) if (!anys[i & 7]!.aborted) live++;
      return live;
    });
  }
  // The loop itself, to read the others against.
  const plain = ctxs.map(() => ({ err: null as Error | null }));
  const tField = await perOp((n) => {
    let live = 0;
    for (let i = 0; i < n; i++) if (plain[i & 7]!.err === null) live++;
    return live;
  });
  row({
    group: "reads",
    name: "err() on a live withCancel ctx (vs signal.aborted)",
    unit: "ns",
    taproot: tErr,
    a: tAborted,
    b: tAbortedAny,
  });
  row({
    group: "reads",
    name: "err() on a withValue over it",
    unit: "ns",
    taproot: tErrV,
    a: tAborted,
    b: tAbortedAny,
  });
  row({
    group: "reads",
    name: "reference: plain object field read, same loop",
    unit: "ns",
    taproot: tField,
  });
  record("err.live", tErr);
  record("err.value", tErrV);
  record("err.plainField", tField);

  // done() and signal cost nothing until asked for: a fresh child holds neither. The same count
  // on a child whose done() and signal were touched shows that the count can see them.
  const [lazy, cancelLazy] = core.withCancel(parent);
  const untouched = lazyParts(lazy);
  const [touched, cancelTouched] = core.withCancel(parent);
  void touched.done();
  void touched.signal;
  const seen = lazyParts(touched) >= 1;
  record("lazy.freshChild", seen ? untouched : undefined);
  cancelTouched();
  cancelLazy();
  for (const f of cancels) f();
  cancelParent();
}
