/**
 * Listeners on long-lived signals: children that come and go may leave
 * nothing behind, and many live children of one outside signal share one
 * listener.
 */
import { getEventListeners } from "node:events";
import type { Build } from "../build.js";
import { settle } from "../harness.js";
import { record, setPhase } from "../report.js";

export async function listeners({ core }: Build): Promise<void> {
  setPhase("listeners");
  // Long-lived outside signal, children that come and go: nothing may accumulate.
  const outside = new AbortController();
  const [parent, cancelParent] = core.withCancel(core.background());
  void parent.signal;
  const live = [];
  for (let i = 0; i < 1000; i++) live.push(core.withCancel(parent));
  for (const [c] of live) void c.signal;
  for (let i = 0; i < 100_000; i++) core.withSignal(parent, outside.signal)[1]();
  // Many live children of one outside signal at once.
  const followers = [];
  for (let i = 0; i < 1000; i++) followers.push(core.withSignal(parent, outside.signal));
  record("listeners.held", getEventListeners(outside.signal, "abort").length);
  for (const [, f] of followers) f();
  record("listeners.left", getEventListeners(outside.signal, "abort").length);
  record("listeners.onParent", getEventListeners(parent.signal, "abort").length);
  for (let i = 0; i < 100_000; i++) core.withCancel(parent)[1]();
  for (const [, f] of live) f();
  cancelParent();
  outside.abort();
  await settle();
}
