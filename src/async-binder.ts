/**
 * AsyncBinder wraps a callback so that it runs in the async context
 * (AsyncLocalStorage stores, and so OpenTelemetry's active context) that was
 * current when it was wrapped. The core cannot import node:async_hooks;
 * taproot-context/otel installs one.
 */
export type AsyncBinder = <F extends () => void>(f: F) => F;

/** The installed binder; null (the default) leaves callbacks as they are. */
export let binder: AsyncBinder | null = null;

/** setAsyncBinder installs a binder, or removes it with null, and returns the one it replaced. */
export function setAsyncBinder(b: AsyncBinder | null): AsyncBinder | null {
  const old = binder;
  binder = b;
  return old;
}
