/**
 * The share of a profiled process's CPU time spent in taproot, read from a
 * V8 CPU profile (bench/server-profile.js takes them): sampling does not
 * care how busy the rest of the machine is, so this figure holds where
 * wall-clock and even CPU-time comparisons wobble.
 *
 * A sample is taproot's when the nearest frame above it that belongs to
 * neither Node's own modules (`node:…`) nor V8's builtins is one of this
 * package's `dist/` files: taproot's code, and what it called in Node (an
 * `addEventListener`, a `setTimeout`), but not the framework code it calls
 * back into (a Hono middleware's `next()`). Garbage collection belongs to no
 * frame and is reported apart; part of it is taproot's allocations.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** ProfileShare is how a profiled window's busy CPU time divides. */
export interface ProfileShare {
  /** taproot's share of the busy time (all but idle), 0-1. */
  taproot: number;
  /** The garbage collector's share of the busy time, 0-1. */
  gc: number;
  /** Busy time in the window, in ms. */
  busyMs: number;
  /** taproot's heaviest functions, by share of the busy time. */
  top: { name: string; share: number }[];
}

const dist = pathToFileURL(fileURLToPath(new URL("../dist/", import.meta.url))).href;

/** profileShare reads the profile at `path`. */
export function profileShare(path: string): ProfileShare {
  const p = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // The nearest frame that is neither Node's nor V8's, for each node: memoized, profiles repeat.
  const ownerOf = new Map<number, ProfileNode | null>();
  const owner = (id: number): ProfileNode | null => {
    let o = ownerOf.get(id);
    if (o !== undefined) return o;
    const n = byId.get(id)!;
    const url = n.callFrame.url;
    if (url !== "" && !url.startsWith("node:")) o = n;
    else {
      const up = parent.get(id);
      o = up === undefined ? null : owner(up);
    }
    ownerOf.set(id, o);
    return o;
  };
  let busy = 0;
  let gc = 0;
  let taproot = 0;
  const byFunction = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    const dt = p.timeDeltas[i] ?? 0;
    const name = byId.get(id)!.callFrame.functionName;
    if (name === "(idle)") continue;
    busy += dt;
    if (name === "(garbage collector)") {
      gc += dt;
      continue;
    }
    const o = owner(id);
    if (o === null || !o.callFrame.url.startsWith(dist)) continue;
    taproot += dt;
    const key = `${o.callFrame.functionName || "(anonymous)"} (${o.callFrame.url.slice(dist.length)}:${o.callFrame.lineNumber + 1})`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
  }
  const top = [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([name, t]) => ({ name, share: t / busy }));
  return { taproot: taproot / busy, gc: gc / busy, busyMs: busy / 1000, top };
}
