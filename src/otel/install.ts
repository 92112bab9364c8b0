import { AsyncResource } from "node:async_hooks";
import { propagation } from "@opentelemetry/api";
import { setAsyncBinder, type AsyncBinder } from "../async-binder.js";
import { addHeaderHook } from "../header-hooks.js";
import { traceContext } from "./trace-context.js";

/** Writes a header into a Fetch API Headers, for propagation.inject. */
const setter = {
  set(carrier: Headers, key: string, value: string): void {
    carrier.set(key, value);
  },
};

/** bind runs a callback in the async context (every AsyncLocalStorage, OpenTelemetry's too) of where it was bound. */
const bind: AsyncBinder = (f) => AsyncResource.bind(f) as typeof f;

/** The remover of the installed hooks while installed; null otherwise. */
let uninstall: (() => void) | null = null;

/**
 * installTracing connects taproot to OpenTelemetry and returns the function
 * that disconnects it. From then on
 * - `fetchWithContext(ctx, ...)` sends the trace context of `ctx`
 *   ({@link traceContext}: the one it carries, else the active one) as
 *   `traceparent` and `tracestate`, next to the deadline header, through
 *   OpenTelemetry's installed propagator;
 * - `afterFunc(ctx, f)` runs `f` in the async context of the afterFunc
 *   call, so OpenTelemetry's active span there is the active span in `f`,
 *   whatever context canceled `ctx`.
 *
 * Nothing in taproot imports `@opentelemetry/api` until you import this
 * module. Calling it again while installed changes nothing.
 *
 * @example
 * ```ts
 * import { installTracing } from "taproot-context/otel";
 *
 * installTracing(); // once, at startup, after the OpenTelemetry SDK
 * ```
 */
export function installTracing(): () => void {
  if (uninstall === null) {
    const removeHook = addHeaderHook((ctx, headers) =>
      propagation.inject(traceContext(ctx), headers, setter),
    );
    const previous = setAsyncBinder(bind);
    uninstall = () => {
      removeHook();
      setAsyncBinder(previous);
      uninstall = null;
    };
  }
  const remove = uninstall;
  return () => {
    if (uninstall === remove) remove();
  };
}
