/**
 * Create + cancel a child of a long-lived cancelable parent: with `.signal`
 * untouched and touched, alone and with 10,000 live siblings.
 */
import { acChild, anyChild, type Child } from "../baselines.js";
import type { Build } from "../build.js";
import { perOp, settle, type Timing } from "../harness.js";
import { options } from "../options.js";
import { baseline, header, record, row, setPhase } from "../report.js";

/*
 * One loop per contender, each its own function: V8 keeps type feedback per function literal,
 * and one loop shared by acChild and anyChild would call both through one polymorphic site.
 */

/** acLoop creates and cancels (a) children of `parent`. */
const acLoop = (parent: AbortSignal) => (n: number) => {
  let aborted = 0;
  for (let i = 0; i < n; i++) {
    const [s, cancel] = acChild(parent);
    cancel();
    if (s.aborted) aborted++;
  }
  return aborted;
};

/** anyLoop creates and cancels (b) children of `parent`. */
const anyLoop = (parent: AbortSignal) => (n: number) => {
  let aborted = 0;
  for (let i = 0; i < n; i++) {
    const [s, cancel] = anyChild(parent);
    cancel();
    if (s.aborted) aborted++;
  }
  return aborted;
};

export async function createCancel({ core }: Build): Promise<void> {
  setPhase("create+cancel");
  header("Create + cancel a child of a long-lived cancelable parent (ns/op)");
  const alternatives = options.alternatives;
  const [parent, cancelParent] = core.withCancel(core.background());
  const withCancel = core.withCancel;
  const untouchedLoop = (n: number) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withCancel(parent);
      cancel();
    }
    return n;
  };
  const touchedLoop = (n: number) => {
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const [ctx, cancel] = withCancel(parent);
      const s = ctx.signal;
      cancel();
      if (s.aborted) aborted++;
    }
    return aborted;
  };

  const tUntouched = await perOp(untouchedLoop);
  const tTouched = await perOp(touchedLoop);
  let tAC: Timing | undefined;
  let tAny: Timing | undefined;
  if (alternatives) {
    const parentSignal = baseline(new AbortController().signal);
    tAC = await perOp(acLoop(parentSignal));
    tAny = await perOp(anyLoop(parentSignal));
  }
  const name = "withCancel + cancel, .signal";
  row({
    group: "create",
    name: `${name} untouched`,
    unit: "ns",
    taproot: tUntouched,
    a: tAC,
    b: tAny,
  });
  row({ group: "create", name: `${name} touched`, unit: "ns", taproot: tTouched, a: tAC, b: tAny });
  await settle();

  // The same with 10,000 live siblings under the parent. Each contender is measured with only
  // its own siblings alive: the baselines' 20,000 controllers and signals would otherwise burden
  // every collection during taproot's measurement (+50% on taproot here), and the other way round.
  setPhase("create+cancel, 10k siblings");
  const siblings: Array<() => void> = [];
  for (let i = 0; i < 10_000; i++) siblings.push(withCancel(parent)[1]);
  await settle();
  const tUntouched10k = await perOp(untouchedLoop);
  const tTouched10k = await perOp(touchedLoop);
  for (const f of siblings) f();
  await settle();
  let tAC10k: Timing | undefined;
  let tAny10k: Timing | undefined;
  if (alternatives) {
    const acSignal = baseline(new AbortController().signal);
    const acSiblings: Array<() => void> = [];
    for (let i = 0; i < 10_000; i++) acSiblings.push(acChild(acSignal)[1]);
    await settle();
    tAC10k = await perOp(acLoop(acSignal));
    for (const f of acSiblings) f();
    await settle();
    const anySignal = baseline(new AbortController().signal);
    const anySiblings: Child[] = [];
    for (let i = 0; i < 10_000; i++) anySiblings.push(anyChild(anySignal));
    await settle();
    tAny10k = await perOp(anyLoop(anySignal));
    for (const [, f] of anySiblings) f();
  }
  const many = "… with 10,000 live siblings, .signal";
  row({
    group: "create",
    name: `${many} untouched`,
    unit: "ns",
    taproot: tUntouched10k,
    a: tAC10k,
    b: tAny10k,
  });
  row({
    group: "create",
    name: `${many} touched`,
    unit: "ns",
    taproot: tTouched10k,
    a: tAC10k,
    b: tAny10k,
  });
  cancelParent();
  await settle();

  record("create.untouched", tUntouched);
  record("create.touched", tTouched);
  record("create.untouched10k", tUntouched10k);
  record("create.touched10k", tTouched10k);
  record("create.a", tAC);
  record("create.b", tAny);
  record("create.a10k", tAC10k);
  record("create.b10k", tAny10k);
}
