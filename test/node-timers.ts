/**
 * Node-only test helpers (node:async_hooks), apart from test/helpers.ts,
 * which the browser run bundles.
 */
import { createHook } from "node:async_hooks";
import { flush } from "./helpers.js";

/**
 * trackTimers counts the timers created while it tracks that are still
 * pending, ref'd or not: process.getActiveResourcesInfo() does not list
 * unref'd timers, so this follows their async_hooks lifecycle instead.
 * Dispose it (`using timers = trackTimers()`) to stop tracking.
 */
export function trackTimers(): { pending(): Promise<number>; [Symbol.dispose](): void } {
  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type === "Timeout") live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return {
    async pending(): Promise<number> {
      // destroy hooks are emitted asynchronously.
      await flush();
      await flush();
      return live.size;
    },
    [Symbol.dispose]() {
      hook.disable();
    },
  };
}
