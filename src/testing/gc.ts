import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { turn } from "./real-time.js";

type Gc = () => void;

let cached: Gc | null | undefined;

/**
 * gcFunction returns a function that forces a full garbage collection:
 * `globalThis.gc` when Node runs with `--expose-gc`, else one obtained by
 * turning the flag on at run time (the `v8.setFlagsFromString` route that
 * Node documents as unsupported but that works on every version since 12),
 * else null.
 */
function gcFunction(): Gc | null {
  if (cached !== undefined) return cached;
  const g = (globalThis as { gc?: unknown }).gc;
  if (typeof g === "function") return (cached = g as Gc);
  try {
    setFlagsFromString("--expose-gc");
    const f = runInNewContext("gc") as unknown;
    cached = typeof f === "function" ? (f as Gc) : null;
  } catch {
    cached = null;
  }
  return cached;
}

/** canCollectGarbage tells whether {@link collectGarbage} can force a collection in this process. */
export function canCollectGarbage(): boolean {
  return gcFunction() !== null;
}

/**
 * collectGarbage forces full collections, a turn apart, so that WeakRefs
 * to unreachable objects are cleared and FinalizationRegistry callbacks get
 * a chance to run. Without a way to force one it only yields a turn.
 */
export async function collectGarbage(): Promise<void> {
  const gc = gcFunction();
  for (let i = 0; i < 2; i++) {
    gc?.();
    await turn();
  }
}
