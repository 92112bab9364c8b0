import type { Context } from "./context.js";

/**
 * HeaderHook adds headers derived from `ctx` to an outgoing request (trace
 * context, for taproot-context/otel). It must not throw.
 */
export type HeaderHook = (ctx: Context, headers: Headers) => void;

/** The installed hooks, in order; replaced (never mutated) by addHeaderHook and its remover. */
let installed: readonly HeaderHook[] = [];

/**
 * addHeaderHook makes `fetchWithContext` call `hook` for every request, and
 * returns the function that removes it. Integrations install hooks so that
 * the fetch code imports none of them.
 */
export function addHeaderHook(hook: HeaderHook): () => void {
  installed = [...installed, hook];
  return () => {
    installed = installed.filter((h) => h !== hook);
  };
}

/**
 * hookHeaders returns `headers` with every hook's headers added, as a new
 * Headers, or undefined (leave the request as it is) when no hook is
 * installed, which costs one length check.
 */
export function hookHeaders(
  ctx: Context,
  headers: ConstructorParameters<typeof Headers>[0],
): Headers | undefined {
  if (installed.length === 0) return undefined;
  const h = new Headers(headers);
  for (const hook of installed) hook(ctx, h);
  return h;
}
