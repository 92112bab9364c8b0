/**
 * The helpers every test file shares: one way to let queued work run
 * (`flush`), one way to wait for a condition (`until`), one way to resolve a
 * promise from outside (`deferred`), one plain timed pause (`delay`), one way to poll a condition that
 * takes a round trip to check (`pollUntil`) and one
 * way to put a real server on the loopback interface (`loopback`).
 *
 * This module imports nothing from Node at run time (the `node:net` import is
 * a type only), so that the core's tests, which import it, still bundle for
 * the browser run in test/browser/core.test.ts.
 */
import type { createHook } from "node:async_hooks";
import type { AddressInfo, Server } from "node:net";

/**
 * flush waits one macrotask turn: every promise job queued so far, and the
 * callbacks they schedule with `setImmediate`, have run when it resolves.
 * In a browser, where there is no `setImmediate`, a zero timeout does the same.
 */
export function flush(): Promise<void> {
  return new Promise<void>((resolve) =>
    typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0),
  );
}

/**
 * until polls `check` every 2 ms until it returns true, and fails with
 * "timed out after `ms` ms waiting for `what`" if that takes longer than `ms`.
 */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * pollUntil awaits `check` every 5 ms until it resolves true and returns how
 * long that took in ms, or fails with "`what`: still not true after `ms` ms".
 * For conditions that need a round trip to see (a backend's state, a row).
 */
export async function pollUntil(
  what: string,
  ms: number,
  check: () => Promise<boolean>,
): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < ms) {
    if (await check()) return performance.now() - start;
    await delay(5);
  }
  throw new Error(`${what}: still not true after ${ms} ms`);
}

/** delay resolves after `ms` milliseconds (a plain timer, with no context: for pacing a test). */
export function delay(ms: number): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** deferred returns a promise and the function that resolves it. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Loopback is a server listening on 127.0.0.1, as `loopback` started it. */
export interface Loopback {
  /** The port the system chose. */
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /**
   * close stops the server, ends the connections it still has (where the
   * server can: node:http's `closeAllConnections`) and resolves once the
   * server has closed.
   */
  close(): Promise<void>;
}

/**
 * loopback starts `server` (node:http, node:https, node:http2 or node:net) on
 * a free port of 127.0.0.1, the only interface tests may listen on.
 */
export async function loopback(server: Server): Promise<Loopback> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const withConnections = server as Server & { closeAllConnections?: () => void };
      withConnections.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * trackTimers counts the timers created while it tracks that are still
 * pending, ref'd or not: `pending()` after the work, against its value
 * before. `process.getActiveResourcesInfo()` does not list unref'd timers,
 * so this follows their async_hooks lifecycle instead. It takes node's `createHook` from the test file, which may import
 * `node:async_hooks`: this module must not (see above). Dispose it to stop
 * tracking.
 */
export function trackTimers(hooks: typeof createHook) {
  const live = new Set<number>();
  const hook = hooks({
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
