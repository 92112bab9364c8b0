/**
 * Heap, after gc(): the bytes a create+cancel cycle leaves behind, and the
 * bytes a live child with its cancel function holds.
 */
import { acChild, anyChild, HOUR } from "../baselines.js";
import type { Build } from "../build.js";
import { heapUsed, settle } from "../harness.js";
import { options } from "../options.js";
import { baseline, header, record, row, setPhase } from "../report.js";

/** A workload for retainedPerCycle: a parent, one create+cancel cycle under it, and its end. */
interface Cycles<P> {
  parent: P;
  cycle: (parent: P) => void;
  done: () => void;
}

/** retainedPerCycle is the heap growth per cycle over `cycles` cycles, after a warmup. */
async function retainedPerCycle<P>(make: () => Cycles<P>, cycles: number): Promise<number> {
  const { parent, cycle, done } = make();
  // Warm up so compiled code and feedback are not counted as retained.
  for (let i = 0; i < 20_000; i++) cycle(parent);
  await settle();
  const h0 = heapUsed();
  for (let i = 0; i < cycles; i++) cycle(parent);
  await settle();
  const h1 = heapUsed();
  done();
  return (h1 - h0) / cycles;
}

/** A workload for perLive: a parent, a child of it with its cancel function, and its end. */
interface Live<P, C> {
  parent: P;
  child: (parent: P) => [C, () => void];
  done: () => void;
}

/** perLive is the heap per live child (with its cancel function), over `live` children. */
async function perLive<P, C>(make: () => Live<P, C>, live: number): Promise<number> {
  const ctxs: Array<C | null> = new Array<C | null>(live).fill(null);
  const fns: Array<(() => void) | null> = new Array<(() => void) | null>(live).fill(null);
  const { parent, child, done } = make();
  // Warm up the code paths, then measure with the holders already allocated.
  for (let i = 0; i < 1000; i++) {
    const [c, f] = child(parent);
    ctxs[i] = c;
    fns[i] = f;
  }
  for (let i = 0; i < 1000; i++) fns[i]!();
  ctxs.fill(null);
  fns.fill(null);
  await settle();
  const h0 = heapUsed();
  for (let i = 0; i < live; i++) {
    const [c, f] = child(parent);
    ctxs[i] = c;
    fns[i] = f;
  }
  await settle();
  const h1 = heapUsed();
  for (const f of fns) f!();
  done();
  return (h1 - h0) / live;
}

export async function heap({ core }: Build): Promise<void> {
  setPhase("heap");
  header("Heap (bytes, after gc())");
  const alternatives = options.alternatives;
  // 1M cycles for withCancel; the variants that create an AbortController (30 µs or so each to
  // abort on Node 20) or a timer run 20k, which is plenty to see bytes per cycle.
  const CYCLES = options.quick ? 200_000 : 1_000_000;
  const SLOW = options.quick ? 5_000 : 20_000;
  const count = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);

  const tRet = await retainedPerCycle(() => {
    const [parent, cancel] = core.withCancel(core.background());
    return { parent, cycle: (p) => core.withCancel(p)[1](), done: cancel };
  }, CYCLES);
  const tRetS = await retainedPerCycle(() => {
    const [parent, cancel] = core.withCancel(core.background());
    void parent.signal;
    return {
      parent,
      cycle: (p) => {
        const [c, f] = core.withCancel(p);
        void c.signal;
        f();
      },
      done: cancel,
    };
  }, SLOW);
  const tRetT = await retainedPerCycle(() => {
    const [parent, cancel] = core.withCancel(core.background());
    return { parent, cycle: (p) => core.withTimeout(p, HOUR)[1](), done: cancel };
  }, SLOW);
  let aRet: number | undefined;
  let bRet: number | undefined;
  if (alternatives) {
    aRet = await retainedPerCycle(() => {
      const ac = new AbortController();
      return { parent: ac.signal, cycle: (p) => acChild(p)[1](), done: () => ac.abort() };
    }, SLOW);
    bRet = await retainedPerCycle(() => {
      const ac = new AbortController();
      return { parent: ac.signal, cycle: (p) => anyChild(p)[1](), done: () => ac.abort() };
    }, SLOW);
  }
  const label = "retained per create+cancel cycle";
  const note = alternatives
    ? `taproot ${count(CYCLES)} cycles, (a)/(b) ${count(SLOW)}`
    : `${count(CYCLES)} cycles`;
  row({
    group: "heap",
    name: `${label}, .signal untouched`,
    unit: "B",
    taproot: tRet,
    a: aRet,
    b: bRet,
    note,
    noRatio: true,
  });
  row({
    group: "heap",
    name: `${label}, .signal touched`,
    unit: "B",
    taproot: tRetS,
    a: aRet,
    b: bRet,
    note: `${count(SLOW)} cycles`,
    noRatio: true,
  });
  row({
    group: "heap",
    name: `${label}, withTimeout(1h)`,
    unit: "B",
    taproot: tRetT,
    note: `${count(SLOW)} cycles`,
    noRatio: true,
  });
  record("heap.retainedPerCycle", tRet);
  record("heap.retainedPerCycle.signal", tRetS);
  record("heap.retainedPerCycle.timeout", tRetT);
  record("heap.retainedPerCycle.b", bRet);

  // 100k live children for taproot without signals; 10k where an AbortController is made (each
  // costs tens of µs to abort on Node 20) and for hand-linked ones, whose addEventListener walks
  // the parent's whole listener list (quadratic: 100k listeners on one signal take minutes).
  const LIVE = 100_000;
  const FEW = 10_000;
  const tLive = await perLive(() => {
    const [parent, cancel] = core.withCancel(core.background());
    return { parent, child: (p) => core.withCancel(p), done: cancel };
  }, LIVE);
  const tLiveS = await perLive(() => {
    const [parent, cancel] = core.withCancel(core.background());
    return {
      parent,
      child: (p) => {
        const r = core.withCancel(p);
        void r[0].signal;
        return r;
      },
      done: cancel,
    };
  }, FEW);
  const tLiveT = await perLive(() => {
    const [parent, cancel] = core.withCancel(core.background());
    return { parent, child: (p) => core.withTimeout(p, HOUR), done: cancel };
  }, LIVE);
  let aLive: number | undefined;
  let bLive: number | undefined;
  if (alternatives) {
    aLive = await perLive(() => {
      const ac = new AbortController();
      return { parent: baseline(ac.signal), child: (p) => acChild(p), done: () => ac.abort() };
    }, FEW);
    bLive = await perLive(() => {
      const ac = new AbortController();
      return { parent: ac.signal, child: (p) => anyChild(p), done: () => ac.abort() };
    }, FEW);
  }
  const per = "per live child + its cancel function";
  row({
    group: "heap",
    name: `${per}, .signal untouched`,
    unit: "B",
    taproot: tLive,
    a: aLive,
    b: bLive,
  });
  row({
    group: "heap",
    name: `${per}, .signal touched`,
    unit: "B",
    taproot: tLiveS,
    a: aLive,
    b: bLive,
  });
  row({
    group: "heap",
    name: "per live withTimeout(1h) child + cancel (timer included)",
    unit: "B",
    taproot: tLiveT,
  });
  record("heap.perLiveChild", tLive);
  record("heap.perLiveChild.a", aLive);
  record("heap.perLiveChild.b", bLive);
}
