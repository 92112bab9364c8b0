import type { Context } from "../context.js";
import { setDebugHooks } from "../introspect.js";
import type { DebugHooks } from "../introspect.js";
import { Site } from "./site.js";

/** Birth is what the hooks learn about a cancelable context when it is created. */
export interface Birth {
  /** Epoch ms of creation. */
  readonly at: number;
  /** Where it was created; null when no watcher asked for stacks. */
  readonly site: Site | null;
}

/**
 * Watcher is one consumer of the core's debug hooks: a leak tracker or the
 * runtime guard. The core has one hook slot; this module multiplexes it.
 */
export interface Watcher {
  /** Whether creations should capture a stack trace. */
  readonly stacks: boolean;
  /** A parent with more live children than this is reported to tooManyChildren. */
  readonly childLimit: number;
  created?(ctx: Context, cancel: (...args: never[]) => void, birth: Birth): void;
  tooManyChildren?(parent: Context, count: number): void;
}

const watchers = new Set<Watcher>();

/** When each context seen by the hooks was created; entries go with their context. */
const births = new WeakMap<Context, Birth>();

/** birthOf returns what is known of ctx's creation: only contexts created while a watcher was active are known. */
export function birthOf(ctx: Context): Birth | undefined {
  return births.get(ctx);
}

/** watch starts delivering the core's hooks to w and returns the function that stops it. */
export function watch(w: Watcher): () => void {
  watchers.add(w);
  install();
  return () => {
    if (watchers.delete(w)) install();
  };
}

/**
 * install puts one DebugHooks object in the core's slot, or null when
 * nobody watches, so that the core is back to one null check per creation.
 */
function install(): void {
  if (watchers.size === 0) {
    setDebugHooks(null);
    return;
  }
  const list = [...watchers];
  const stacks = list.some((w) => w.stacks);
  const childLimit = Math.min(...list.map((w) => w.childLimit));
  const hooks: DebugHooks = {
    childLimit,
    created(ctx, cancel) {
      const birth: Birth = { at: Date.now(), site: stacks ? new Site() : null };
      // Ages and creation sites for inspectTree and the guard's warnings; a WeakMap entry costs, so only when stacks are asked for.
      if (stacks) births.set(ctx, birth);
      for (const w of list) w.created?.(ctx, cancel, birth);
    },
    tooManyChildren(parent, count) {
      for (const w of list) if (count > w.childLimit) w.tooManyChildren?.(parent, count);
    },
  };
  setDebugHooks(hooks);
}
