/**
 * taproot-context/otel: OpenTelemetry traces that follow taproot contexts.
 * `installTracing()` makes `fetchWithContext` send `traceparent` and
 * `tracestate` next to the deadline, and `afterFunc` callbacks run in the
 * async context (so the active span) of where they were registered. A
 * taproot context can carry a trace context of its own
 * (`withTraceContext`, `withSpan`, `extractTraceContext`), which is found
 * again with `traceContext(ctx)` where the async context was lost.
 * `@opentelemetry/api` is an optional peer: only this module imports it.
 *
 * @example
 * ```ts
 * import { installTracing, extractTraceContext, traceContext, withSpan } from "taproot-context/otel";
 *
 * installTracing();
 * serve(async (ctx, req, res) => {
 *   const rctx = extractTraceContext(ctx, req.headers);
 *   const span = tracer.startSpan("GET /", {}, traceContext(rctx));
 *   const up = await fetchWithContext(withSpan(rctx, span), "http://inventory.internal/");
 *   res.end(await up.text());
 *   span.end();
 * });
 * ```
 *
 * @packageDocumentation
 */

// Installation
export { installTracing } from "./install.js";

// Trace contexts carried by taproot contexts
export { withTraceContext, traceContext, withSpan, extractTraceContext } from "./trace-context.js";
