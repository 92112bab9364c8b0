/**
 * withTimeout(parent, 1h) create + cancel, against AbortSignal.timeout-based
 * code, (a) linked by hand and (b) through AbortSignal.any, and a
 * hand-linked controller with setTimeout for reference.
 */
import { acTimeoutChild, acTimerChild, anyTimeoutChild, HOUR } from "../baselines.js";
import type { Build } from "../build.js";
import { perOp, settle, type Timing } from "../harness.js";
import { options } from "../options.js";
import { baseline, header, record, row, setPhase } from "../report.js";

export async function timeouts({ core }: Build): Promise<void> {
  setPhase("withTimeout");
  header(
    "withTimeout(parent, 1h) create + cancel (ns/op)",
    "(a) AC+AS.timeout",
    "(b) any+AS.timeout",
  );
  const [parent, cancelParent] = core.withCancel(core.background());
  const withTimeout = core.withTimeout;
  const tT = await perOp((n) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withTimeout(parent, HOUR);
      cancel();
    }
    return n;
  });
  await settle();
  let tA: Timing | undefined;
  let tB: Timing | undefined;
  let tTimer: Timing | undefined;
  if (options.alternatives) {
    const parentSignal = baseline(new AbortController().signal);
    tA = await perOp((n) => {
      let aborted = 0;
      for (let i = 0; i < n; i++) {
        const [s, cancel] = acTimeoutChild(parentSignal, HOUR);
        cancel();
        if (s.aborted) aborted++;
      }
      return aborted;
    });
    await settle();
    tB = await perOp((n) => {
      let aborted = 0;
      for (let i = 0; i < n; i++) {
        const [s, cancel] = anyTimeoutChild(parentSignal, HOUR);
        cancel();
        if (s.aborted) aborted++;
      }
      return aborted;
    });
    await settle();
    tTimer = await perOp((n) => {
      let aborted = 0;
      for (let i = 0; i < n; i++) {
        const [s, cancel] = acTimerChild(parentSignal, HOUR);
        cancel();
        if (s.aborted) aborted++;
      }
      return aborted;
    });
  }
  cancelParent();
  await settle();
  row({
    group: "timeout",
    name: "withTimeout(parent, 1h) + cancel",
    unit: "ns",
    taproot: tT,
    a: tA,
    b: tB,
  });
  row({
    group: "timeout",
    name: "reference: hand-linked AC + setTimeout/clearTimeout",
    unit: "ns",
    taproot: null,
    a: tTimer,
  });
  record("timeout.taproot", tT);
  record("timeout.a", tA);
  record("timeout.b", tB);
}
