import {
  context as otelContext,
  propagation,
  trace,
  type Context as OtelContext,
  type Span,
} from "@opentelemetry/api";
import { createKey, withValue, type Context } from "../index.js";
import { checkContext, describeValue } from "../validate.js";

/** The OpenTelemetry context a taproot context carries, set by withTraceContext. */
const traceKey = createKey<OtelContext>("taproot.otel.traceContext");

/**
 * withTraceContext returns a child of `ctx` that carries `trace` (an
 * OpenTelemetry `Context`, which holds the active span): code that gets
 * the taproot context finds the span with {@link traceContext}, however the
 * async context was lost on the way (a callback API, a queue, a pool).
 *
 * @example
 * ```ts
 * tracer.startActiveSpan("checkout", (span) => {
 *   const sctx = withTraceContext(ctx, otel.context.active());
 *   return charge(sctx, order).finally(() => span.end());
 * });
 * ```
 */
export function withTraceContext(ctx: Context, trace: OtelContext): Context {
  const fn = "withTraceContext(ctx, trace)";
  checkContext(fn, "ctx", ctx);
  if (trace === null || typeof trace !== "object" || typeof trace.getValue !== "function") {
    throw new TypeError(
      `${fn}: trace must be an OpenTelemetry Context (from context.active()), got ${describeValue(trace)}`,
    );
  }
  return withValue(ctx, traceKey, trace);
}

/**
 * traceContext returns OpenTelemetry's active context when it has a span
 * (a `startActiveSpan` callback, an instrumented server), else the one
 * `ctx` carries (the nearest {@link withTraceContext}, {@link withSpan} or
 * {@link extractTraceContext} above it), else the active context as it is.
 * So the carried span fills in where the async context was lost (a callback
 * API, a queue, a pool), and never hides a newer active span.
 * fetchWithContext propagates the span found here.
 *
 * @example
 * ```ts
 * const span = tracer.startSpan("load", {}, traceContext(ctx));
 * ```
 */
export function traceContext(ctx: Context): OtelContext {
  checkContext("traceContext(ctx)", "ctx", ctx);
  const active = otelContext.active();
  if (trace.getSpan(active) !== undefined) return active;
  return ctx.value(traceKey) ?? active;
}

/**
 * withSpan returns a child of `ctx` whose trace context is its own with
 * `span` as the active span. `span` must be an OpenTelemetry `Span` (from
 * `tracer.startSpan`, or `trace.wrapSpanContext`); anything else is a
 * `TypeError` naming withSpan.
 *
 * @example
 * ```ts
 * const span = tracer.startSpan("load", {}, traceContext(ctx));
 * try {
 *   await load(withSpan(ctx, span));
 * } finally {
 *   span.end();
 * }
 * ```
 */
export function withSpan(ctx: Context, span: Span): Context {
  const fn = "withSpan(ctx, span)";
  checkContext(fn, "ctx", ctx);
  if (typeof (span as Partial<Span> | null | undefined)?.spanContext !== "function") {
    throw new TypeError(
      `${fn}: span must be an OpenTelemetry Span (from tracer.startSpan()), got ${describeValue(span)}`,
    );
  }
  return withValue(ctx, traceKey, trace.setSpan(ctx.value(traceKey) ?? otelContext.active(), span));
}

/** Reads a header from node:http's IncomingHttpHeaders or a Fetch API Headers. */
const getter = {
  keys(carrier: Headers | Record<string, unknown>): string[] {
    return carrier instanceof Headers ? [...carrier.keys()] : Object.keys(carrier);
  },
  get(carrier: Headers | Record<string, unknown>, key: string): string | string[] | undefined {
    if (carrier instanceof Headers) return carrier.get(key) ?? undefined;
    const v = carrier[key];
    return typeof v === "string" || Array.isArray(v) ? (v as string | string[]) : undefined;
  },
};

/**
 * extractTraceContext returns a child of `ctx` carrying the trace context of
 * an incoming request's headers (`traceparent`/`tracestate` with the W3C
 * propagator that OpenTelemetry has installed): a span started from
 * {@link traceContext} of the result continues the caller's trace.
 *
 * @example
 * ```ts
 * serve(async (ctx, req, res) => {
 *   const rctx = extractTraceContext(ctx, req.headers);
 *   await tracer.startActiveSpan("GET /items", {}, traceContext(rctx), async (span) => {
 *     res.end(JSON.stringify(await items(withSpan(rctx, span))));
 *     span.end();
 *   });
 * });
 * ```
 */
export function extractTraceContext(
  ctx: Context,
  headers: Headers | Record<string, string | string[] | undefined>,
): Context {
  const fn = "extractTraceContext(ctx, headers)";
  checkContext(fn, "ctx", ctx);
  if (headers === null || typeof headers !== "object") {
    throw new TypeError(
      `${fn}: headers must be req.headers or a Fetch API Headers, got ${describeValue(headers)}`,
    );
  }
  return withValue(
    ctx,
    traceKey,
    propagation.extract(ctx.value(traceKey) ?? otelContext.active(), headers, getter),
  );
}
