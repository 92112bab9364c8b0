/**
 * taproot-context/fetch on its own: the portable subpath, imported without
 * taproot/node, against a real server on loopback.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import {
  background,
  cause,
  withCancel,
  withDeadline,
  withTimeout,
  type Context,
} from "../../src/index.js";
import { liveChildCount } from "../../src/introspect.js";
import {
  ClientDisconnectedError,
  fetchHandler,
  fetchWithContext,
  requestContextOf,
} from "../../src/fetch/index.js";
import { LeakError, checkLeaks } from "../../src/testing/index.js";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    // Finalizers run between turns: let them.
    await new Promise((r) => setTimeout(r, 5));
  }
  return process.memoryUsage().heapUsed;
}

/** okServer answers every request with "ok" on a keep-alive connection. */
async function okServer(): Promise<{ url: string; server: http.Server }> {
  return listening(http.createServer((_req, res) => res.end("ok")));
}

/** endlessServer answers 200 and the start of a body it never ends. */
async function endlessServer(): Promise<{ url: string; server: http.Server }> {
  return listening(
    http.createServer((_req, res) => {
      res.writeHead(200);
      res.write("start"); // and never the end
    }),
  );
}

async function listening(server: http.Server): Promise<{ url: string; server: http.Server }> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

describe("fetchWithContext with init.signal", () => {
  it("does not grow the heap per call with one long-lived signal (nodejs/node#55351)", async () => {
    // The fetch is a sink that answers at once: the network's own churn
    // (undici's pools and per-request state) would drown tens of bytes per call.
    const sink = async (_input: unknown, init?: RequestInit): Promise<Response> => {
      assert.equal(init?.signal?.aborted, false);
      return new Response(Math.random() < 0.5 ? null : "ok");
    };
    const longLived = new AbortController().signal;
    const [ctx, cancel] = withCancel(background());
    const calls = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const res = await fetchWithContext(ctx, "http://127.0.0.1/", {
          signal: longLived,
          fetch: sink as typeof fetch,
        });
        await res.text();
      }
    };
    try {
      await calls(5_000); // warm up: the JIT, the first finalizations
      const before = await heapAfterGc();
      await calls(20_000);
      const after = await heapAfterGc();
      const perCall = (after - before) / 20_000;
      // AbortSignal.any([ctx.signal, longLived]) keeps about 100 B per call here.
      assert.ok(perCall < 30, `heap grew ${perCall.toFixed(1)} B per call, want < 30`);
      assert.equal(liveChildCount(ctx), 0, "contexts left under ctx once the responses are gone");
      assert.ok(getEventListeners(longLived, "abort").length <= 1, "listeners on the signal");
    } finally {
      cancel();
    }
  });

  it("over the network, leaves nothing on ctx or the signal once the responses are read", async () => {
    const { url, server } = await okServer();
    const longLived = new AbortController().signal;
    const [ctx, cancel] = withCancel(background());
    try {
      const one = async (): Promise<string> =>
        (await fetchWithContext(ctx, url, { signal: longLived })).text();
      for (let i = 0; i < 200; i++) assert.equal(await one(), "ok");
      // A response with a body lets go of its context when it is collected.
      await heapAfterGc();
      assert.equal(liveChildCount(ctx), 0, "contexts left under ctx");
      assert.ok(getEventListeners(longLived, "abort").length <= 1, "listeners on the signal");
    } finally {
      cancel();
      server.closeAllConnections();
      server.close();
    }
  });

  it("aborts with the signal's reason when the signal aborts, with the context's error when ctx ends", async () => {
    const server = http.createServer(() => {}); // never answers
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const controller = new AbortController();
      const pending = fetchWithContext(background(), url, { signal: controller.signal });
      controller.abort(new Error("user clicked stop"));
      await assert.rejects(pending, { message: "user clicked stop" });
      const [ctx, cancel] = withTimeout(background(), 50);
      await assert.rejects(fetchWithContext(ctx, url, { signal: new AbortController().signal }), {
        name: "TimeoutError",
      });
      cancel();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("fetchWithContext with a Request's own signal", () => {
  it("follows it, as fetch does, and never sends a Request already aborted", async () => {
    let served = 0;
    const server = http.createServer(() => served++); // never answers
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const controller = new AbortController();
      const request = new Request(url, { signal: controller.signal });
      // The context's 3 s only bounds the test: the Request's signal must end the call first.
      const [ctx, cancel] = withTimeout(background(), 3000);
      const pending = fetchWithContext(ctx, request);
      setTimeout(() => controller.abort(new Error("user clicked stop")), 50);
      await assert.rejects(pending, { message: "user clicked stop" });
      cancel();
      const gone = new Request(url, { signal: AbortSignal.abort(new Error("gone")) });
      const before = served;
      await assert.rejects(fetchWithContext(background(), gone), { message: "gone" });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(served, before, "a Request whose signal had aborted was sent");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("a signal that aborts while the body is read rejects the read with its reason", async () => {
    const { url, server } = await endlessServer();
    try {
      const controller = new AbortController();
      const res = await fetchWithContext(background(), url, { signal: controller.signal });
      const reading = res.text();
      controller.abort(new Error("user clicked stop"));
      await assert.rejects(reading, { message: "user clicked stop" });
      // ctx ending while the body is read rejects the read with ctx.err().
      const [ctx, cancel] = withCancel(background());
      const second = await fetchWithContext(ctx, url, { signal: new AbortController().signal });
      const secondReading = second.text();
      cancel();
      await assert.rejects(secondReading, { message: "context canceled" });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("fetchWithContext with a Request, under checkLeaks", () => {
  it("reports no leak for a Request made without a signal, its Response still held", async () => {
    const { url, server } = await okServer();
    try {
      // The Response is returned, so reachable when checkLeaks decides: nothing
      // fetchWithContext made for the Request's own signal may count as a leak.
      const res = await checkLeaks(async () => fetchWithContext(background(), new Request(url)));
      assert.equal(await res.text(), "ok");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("a Request's own signal aborting while the body is read rejects the read with its reason", async () => {
    const { url, server } = await endlessServer();
    try {
      const controller = new AbortController();
      const request = new Request(url, { signal: controller.signal });
      const [ctx, cancel] = withCancel(background());
      const res = await fetchWithContext(ctx, request);
      const reading = res.text();
      controller.abort(new Error("user clicked stop"));
      await assert.rejects(reading, { message: "user clicked stop" });
      assert.equal(liveChildCount(ctx), 0, "children left under ctx once the signal aborted");
      cancel();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("once checkLeaks cancels a leaked context, the body's read rejects with ctx.err() and nothing is left", async () => {
    const { url, server } = await endlessServer();
    try {
      const request = new Request(url);
      let leaked: Context | undefined;
      let reading: Promise<string> | undefined;
      const err: unknown = await checkLeaks(
        async () => {
          [leaked] = withCancel(background()); // the leak: its cancel is dropped
          const res = await fetchWithContext(leaked, request);
          // Reading begun: Node 20's fetch rejects a read begun after the abort with its own AbortError.
          reading = res.text();
          reading.catch(() => {});
        },
        { grace: 0 },
      ).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof LeakError, `checkLeaks = ${String(err)}, want a LeakError`);
      assert.deepEqual(
        err.leaks.map((l) => l.context),
        [leaked],
        `LeakError.leaks = ${err.leaks.map((l) => l.name).join(", ")}, want only the user's context`,
      );
      assert.equal(cause(leaked!), err, "cause(leaked) is not the LeakError");
      await assert.rejects(reading!, { message: "context canceled" });
      assert.equal(liveChildCount(leaked!), 0, "children left under the canceled context");
      assert.equal(
        getEventListeners(request.signal, "abort").length,
        0,
        "listeners left on the Request's signal once its context ended",
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("lets go of the Request's signal and of ctx at once for a response without a body", async () => {
    const request = new Request("http://127.0.0.1:1/");
    const [ctx, cancel] = withCancel(background());
    try {
      const res = await fetchWithContext(ctx, request, {
        fetch: (async () => new Response(null, { status: 204 })) as typeof fetch,
      });
      assert.equal(res.status, 204);
      assert.equal(liveChildCount(ctx), 0, "children left under ctx");
      assert.equal(getEventListeners(request.signal, "abort").length, 0, "listeners on the signal");
    } finally {
      cancel();
    }
  });
});

describe("fetchWithContext's deadline header", () => {
  const capture = (seen: (string | null)[]) =>
    (async (_input: unknown, init?: RequestInit) => {
      seen.push(new Headers(init?.headers).get("connect-timeout-ms"));
      return new Response(null);
    }) as typeof fetch;

  it("sends a number for a deadline beyond the range of Date", async () => {
    for (const [ctx, cancel] of [
      withTimeout(background(), 1e16),
      withDeadline(background(), Number.MAX_VALUE),
    ]) {
      const seen: (string | null)[] = [];
      try {
        await fetchWithContext(ctx, "http://127.0.0.1:1/", { fetch: capture(seen) });
      } finally {
        cancel();
      }
      assert.equal(
        seen[0],
        "9999999999",
        `connect-timeout-ms = ${seen[0]}, want the largest it carries`,
      );
    }
  });

  it("refuses a user's context whose deadline() is an invalid Date, naming fetchWithContext", async () => {
    const user = {
      deadline: () => new Date(NaN),
      done: () => null,
      err: () => null,
      value: () => undefined,
      signal: new AbortController().signal,
    };
    const seen: (string | null)[] = [];
    await assert.rejects(fetchWithContext(user, "http://127.0.0.1:1/", { fetch: capture(seen) }), {
      name: "TypeError",
      message:
        /^fetchWithContext\(ctx, input, init\): parent\.deadline\(\) returned an invalid Date/,
    });
    assert.deepEqual(seen, [], "a request was sent with a NaN deadline");
  });
});

describe("bad input", () => {
  it("fetchWithContext refuses a fetch that is no function and init that is no object", async () => {
    await assert.rejects(
      fetchWithContext(background(), "http://127.0.0.1:1/", { fetch: "x" as never }),
      {
        name: "TypeError",
        message:
          /fetchWithContext\(ctx, input, init\): init.fetch must be a fetch function, got "x" \(string\)/,
      },
    );
    await assert.rejects(fetchWithContext(background(), "http://127.0.0.1:1/", 5 as never), {
      name: "TypeError",
      message: /fetchWithContext\(ctx, input, init\): init must be an object, got 5 \(number\)/,
    });
    await assert.rejects(
      fetchWithContext(background(), "http://127.0.0.1:1/", { signal: {} as never }),
      { name: "TypeError", message: /init.signal must be an AbortSignal, got an object/ },
    );
    // Only aborted, as a hand-made stand-in may have: still named by fetchWithContext, not withSignal.
    await assert.rejects(
      fetchWithContext(background(), "http://127.0.0.1:1/", {
        signal: { aborted: false } as never,
        fetch: async () => new Response(null),
      }),
      {
        name: "TypeError",
        message:
          /^fetchWithContext\(ctx, input, init\): init.signal must be an AbortSignal, got an object/,
      },
    );
  });

  it("fetchHandler refuses what is no Request, and serves a Request-like object", async () => {
    const h = fetchHandler(async () => new Response("ok"));
    await assert.rejects(h(undefined as never), {
      name: "TypeError",
      message:
        /fetchHandler\(handler\)\(request\): request must be a Fetch API Request, got undefined/,
    });
    await assert.rejects(h({ url: "/x", headers: {} } as never), {
      name: "TypeError",
      message: /its headers are an object, want a Headers object/,
    });
    assert.throws(() => fetchHandler(async () => new Response(""), 10 as never), {
      name: "TypeError",
      message: /fetchHandler\(handler, options\): options must be an object, got 10 \(number\)/,
    });
    // The shape of a Request, as a framework's own request object may be.
    const like = {
      url: "http://localhost/items?id=4",
      method: "GET",
      headers: new Headers({ "connect-timeout-ms": "1000" }),
      signal: new AbortController().signal,
    };
    let deadline: Date | undefined;
    const res = await fetchHandler(async (ctx) => {
      deadline = ctx.deadline();
      return new Response("ok");
    })(like as never);
    assert.equal(await res.text(), "ok");
    assert.ok(deadline !== undefined, "the deadline header was read");
  });

  it("fetchWithContext refuses what an init.fetch resolves to when it is no Response, and keeps no child", async () => {
    const [ctx, cancel] = withCancel(background());
    try {
      for (const returned of [undefined, null, "ok", { ok: true }]) {
        for (const signal of [undefined, new AbortController().signal]) {
          await assert.rejects(
            fetchWithContext(ctx, "http://127.0.0.1:1/", {
              signal,
              fetch: (async () => returned) as never,
            }),
            {
              name: "TypeError",
              message:
                /^fetchWithContext\(ctx, input, init\): init.fetch must resolve to a Response, got /,
            },
            `init.fetch resolving to ${String(returned)}, signal ${signal ? "given" : "absent"}`,
          );
        }
      }
      assert.equal(liveChildCount(ctx), 0, "children left under ctx");
    } finally {
      cancel();
    }
  });

  it("fetchWithContext refuses a propagateDeadline that is not a boolean", async () => {
    for (const value of ["false", 0, null]) {
      await assert.rejects(
        fetchWithContext(background(), "http://127.0.0.1:1/", {
          propagateDeadline: value as never,
          fetch: async () => new Response("sent"),
        }),
        {
          name: "TypeError",
          message:
            /^fetchWithContext\(ctx, input, init\): init.propagateDeadline must be true or false, got /,
        },
        `propagateDeadline ${JSON.stringify(value)}`,
      );
    }
  });

  it("fetchWithContext with init.signal null does not follow a Request's own signal, as fetch does not", async () => {
    const { url, server } = await okServer();
    try {
      const controller = new AbortController();
      controller.abort(new Error("the Request's own reason"));
      const request = new Request(url, { signal: controller.signal });
      const res = await fetchWithContext(background(), request, { signal: null });
      assert.equal(await res.text(), "ok");
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("fetchHandler refuses a signal without listeners, and a handler that returns no Response", async () => {
    const [root, cancel] = withCancel(background());
    try {
      const h = fetchHandler(async () => new Response("ok"), { context: root });
      for (const signal of [{ aborted: false }, { aborted: false, addEventListener() {} }]) {
        await assert.rejects(
          h({ url: "http://localhost/", headers: new Headers(), signal } as never),
          { name: "TypeError", message: /its signal is an object, want an AbortSignal/ },
        );
      }
      let seen: Context | undefined;
      for (const returned of [undefined, { status: 200 }, "ok"]) {
        await assert.rejects(
          fetchHandler(
            async (ctx) => {
              seen = ctx;
              return returned as never;
            },
            { context: root },
          )(new Request("http://localhost/")),
          {
            name: "TypeError",
            message:
              /^fetchHandler\(handler\)\(request\): the handler must return a Response \(or a promise of one\), got /,
          },
          `a handler returning ${JSON.stringify(returned)}`,
        );
        assert.notEqual(seen?.err(), null, "the request context is still live");
      }
      assert.equal(liveChildCount(root), 0, "request contexts left under options.context");
    } finally {
      cancel();
    }
  });

  it("fetchHandler reads a client that leaves as a disconnect, and its context is found again", async () => {
    const controller = new AbortController();
    const request = new Request("http://localhost/slow?q=1", { signal: controller.signal });
    const h = fetchHandler(async (ctx, req) => {
      assert.equal(requestContextOf(req), ctx);
      controller.abort();
      await ctx.done();
      return new Response(String(cause(ctx)));
    });
    const res = await h(request);
    assert.match(await res.text(), /ClientDisconnectedError: .*GET \/slow\?q=1/);
    assert.ok(new ClientDisconnectedError("GET", "/") instanceof Error);
  });
});
