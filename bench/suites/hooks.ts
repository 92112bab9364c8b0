/**
 * The cost of the debug hooks (setDebugHooks, which the testing guard
 * installs): withCancel + cancel with none installed, and with no-op hooks.
 * A build without dist/introspect.js's setDebugHooks skips this suite.
 */
import type { Build } from "../build.js";
import { perOp } from "../harness.js";
import { cell, header, row, say, setPhase } from "../report.js";

export async function hooksCost({ core, setDebugHooks }: Build): Promise<void> {
  setPhase("hooks");
  header("Debug hooks (ns/op, withCancel + cancel, .signal untouched)", "no-op hooks", "");
  if (setDebugHooks === null) {
    say("(skipped: this build's dist/introspect.js has no setDebugHooks)");
    return;
  }
  const [parent, cancelParent] = core.withCancel(core.background());
  const withCancel = core.withCancel;
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      const [, cancel] = withCancel(parent);
      cancel();
    }
    return n;
  };
  const off1 = await perOp(loop);
  const noop = { created() {}, childLimit: Infinity, tooManyChildren() {} };
  const old = setDebugHooks(noop);
  const on = await perOp(loop);
  setDebugHooks(old);
  const off2 = await perOp(loop);
  cancelParent();
  const off = off1.cpu <= off2.cpu ? off1 : off2;
  row({
    group: "hooks",
    name: "hooks off (null) vs no-op hooks installed",
    unit: "ns",
    taproot: off,
    a: on,
    note: `off: ${cell(off1, "ns")} before, ${cell(off2, "ns")} after`,
  });
}
