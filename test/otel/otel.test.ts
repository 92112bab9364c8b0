/**
 * taproot-context/otel with the real OpenTelemetry SDK (in-memory exporter,
 * AsyncLocalStorage context manager, W3C propagator): one trace across a
 * chain of three node:http services on 127.0.0.1 that call each other with
 * fetchWithContext, and afterFunc callbacks that keep the active span of
 * where they were registered.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";

import { context as otel, propagation, trace, type Span } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";

import {
  afterFunc,
  background,
  group,
  sleep,
  withCancel,
  withTimeout,
  type Context,
} from "../../src/index.js";
import { fetchWithContext, serve, type ContextServer } from "../../src/node/index.js";
import {
  extractTraceContext,
  installTracing,
  traceContext,
  withSpan,
  withTraceContext,
} from "../../src/otel/index.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer("taproot-test");
const manager = new AsyncLocalStorageContextManager().enable();

let uninstall: () => void;
const servers: ContextServer[] = [];
const urls: string[] = [];
/** What the last service saw of its request. */
let lastHeaders: IncomingMessage["headers"] = {};

before(async () => {
  otel.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  uninstall = installTracing();
  // Three services: a calls b, b calls c. a and c carry the span in the
  // taproot context (withSpan); b leaves it in OpenTelemetry's active
  // context (startActiveSpan), which fetchWithContext also reads.
  for (const name of ["c", "b", "a"]) {
    const next = urls[0];
    const app = serve(async (ctx: Context, req: IncomingMessage, res: ServerResponse) => {
      const rctx = extractTraceContext(ctx, req.headers);
      if (next === undefined) lastHeaders = req.headers;
      const work = async (sctx: Context): Promise<string> =>
        next === undefined ? "c" : `${name}>${await (await fetchWithContext(sctx, next)).text()}`;
      if (name === "b") {
        await tracer.startActiveSpan(`service ${name}`, {}, traceContext(rctx), async (span) => {
          res.end(await work(rctx));
          span.end();
        });
      } else {
        const span = tracer.startSpan(`service ${name}`, {}, traceContext(rctx));
        res.end(await work(withSpan(rctx, span)));
        span.end();
      }
    });
    const { port } = await app.listen(0, "127.0.0.1");
    servers.push(app);
    urls.unshift(`http://127.0.0.1:${port}/`);
  }
});

after(async () => {
  uninstall();
  for (const s of servers) await s.shutdown();
  otel.disable();
  propagation.disable();
  trace.disable();
});

describe("fetchWithContext", () => {
  test("one trace spans a chain of three services", async () => {
    exporter.reset();
    const root = tracer.startSpan("client");
    const [ctx, cancel] = withTimeout(withSpan(background(), root), 10_000);
    try {
      const res = await fetchWithContext(ctx, urls[0]!);
      assert.equal(await res.text(), "a>b>c");
    } finally {
      cancel();
      root.end();
    }
    const spans = exporter.getFinishedSpans();
    const byName = new Map(spans.map((s) => [s.name, s]));
    assert.deepEqual(
      [...byName.keys()].sort(),
      ["client", "service a", "service b", "service c"],
      "spans exported",
    );
    const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
    assert.equal(traceIds.size, 1, `trace ids = ${[...traceIds].join(", ")}, want one trace`);
    const parent = (n: string) => byName.get(n)!.parentSpanContext?.spanId;
    const id = (n: string) => byName.get(n)!.spanContext().spanId;
    assert.equal(parent("service a"), id("client"), "service a's parent, want the client span");
    assert.equal(parent("service b"), id("service a"), "service b's parent, want service a");
    assert.equal(parent("service c"), id("service b"), "service c's parent, want service b");
    // The deadline went along with the trace.
    assert.match(String(lastHeaders.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const left = Number(lastHeaders["connect-timeout-ms"]);
    assert.ok(left > 0 && left <= 10_000, `connect-timeout-ms at c = ${left}, want (0, 10000]`);
  });

  test("a context that carries no span sends the active one, and none when there is none", async () => {
    exporter.reset();
    await tracer.startActiveSpan("active", async (span) => {
      await (await fetchWithContext(background(), urls[2]!)).text();
      span.end();
    });
    assert.equal(
      String(lastHeaders.traceparent).split("-")[1],
      exporter
        .getFinishedSpans()
        .find((s) => s.name === "active")!
        .spanContext().traceId,
    );
    await (await fetchWithContext(background(), urls[2]!)).text();
    assert.equal(lastHeaders.traceparent, undefined, "traceparent sent with no span anywhere");
  });

  test("uninstalled, fetchWithContext sends no trace headers", async () => {
    uninstall();
    try {
      const span = tracer.startSpan("off");
      await (await fetchWithContext(withSpan(background(), span), urls[2]!)).text();
      span.end();
      assert.equal(lastHeaders.traceparent, undefined, "traceparent sent while uninstalled");
    } finally {
      uninstall = installTracing();
    }
  });
});

describe("afterFunc", () => {
  /** activeIn registers an afterFunc inside span's active context and cancels from outside it. */
  async function activeIn(span: Span): Promise<Span | undefined> {
    const [ctx, cancel] = withCancel(background());
    const seen = new Promise<Span | undefined>((resolve) => {
      otel.with(trace.setSpan(otel.active(), span), () => {
        afterFunc(ctx, () => resolve(trace.getActiveSpan()));
      });
    });
    const other = tracer.startSpan("canceler");
    otel.with(trace.setSpan(otel.active(), other), cancel);
    other.end();
    return seen;
  }

  test("runs in the active span of where afterFunc was called, not of the canceler", async () => {
    const span = tracer.startSpan("registrar");
    const got = await activeIn(span);
    span.end();
    assert.equal(
      got,
      span,
      `active span in f = ${(got as { name?: string })?.name}, want registrar`,
    );
  });

  test("without installTracing the span is the canceler's (the gap it closes)", async () => {
    uninstall();
    try {
      const span = tracer.startSpan("registrar");
      const got = await activeIn(span);
      span.end();
      assert.notEqual(got, span, "f saw the registrar's span without installTracing");
    } finally {
      uninstall = installTracing();
    }
  });
});

describe("group", () => {
  test("a task that waits for a slot runs in the active span of where go() was called", async () => {
    const g = group(background(), { limit: 1 });
    const seen: Record<string, Span | undefined> = {};
    const first = tracer.startSpan("request A");
    const second = tracer.startSpan("request B");
    otel.with(trace.setSpan(otel.active(), first), () => {
      g.go(async () => {
        seen.A = trace.getActiveSpan();
        await sleep(background(), 20);
      });
    });
    // Queued behind A's task, started when it ends.
    otel.with(trace.setSpan(otel.active(), second), () => {
      g.go(async () => {
        seen.B = trace.getActiveSpan();
      });
    });
    await g.wait();
    first.end();
    second.end();
    assert.equal(seen.A, first, "the span of the task that started at once");
    assert.equal(
      seen.B,
      second,
      `the queued task ran in ${(seen.B as { name?: string } | undefined)?.name}, want request B`,
    );
  });
});

describe("trace contexts on taproot contexts", () => {
  test("traceContext finds the carried context where the async context is lost", async () => {
    const span = tracer.startSpan("carried");
    const ctx = withTraceContext(background(), trace.setSpan(otel.active(), span));
    // A timer started outside any span: OpenTelemetry's active context is empty there.
    const found = await otel.with(
      otel.active(),
      () => new Promise((r) => setTimeout(() => r(trace.getSpan(traceContext(ctx))), 1)),
    );
    span.end();
    assert.equal(found, span);
  });

  test("bad arguments fail with the function's name and the fix", () => {
    assert.throws(
      () => withTraceContext(background(), {} as never),
      /withTraceContext\(ctx, trace\): trace must be an OpenTelemetry Context/,
    );
    assert.throws(
      () => traceContext(null as never),
      /traceContext\(ctx\): ctx is null; pass background\(\)/,
    );
    assert.throws(
      () => extractTraceContext(background(), null as never),
      /extractTraceContext\(ctx, headers\): headers must be/,
    );
    for (const bad of [undefined, null, {}, "span", 5]) {
      assert.throws(() => withSpan(background(), bad as never), {
        name: "TypeError",
        message: /^withSpan\(ctx, span\): span must be an OpenTelemetry Span/,
      });
    }
  });
});
