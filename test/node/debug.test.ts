import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, request } from "node:http";
import { connect, type AddressInfo } from "node:net";
import type { ClientRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import express from "express";
import type { BrowserContext } from "playwright-core";

import { launchChromium } from "../chromium.js";
import { until } from "../helpers.js";

import * as context from "../../src/index.js";
import { isLoopback, redactQuery } from "../../src/node/debug.js";
import { debugHandler, debugSnapshot, serve } from "../../src/node/index.js";
import type { ContextServer } from "../../src/node/index.js";

const shots = fileURLToPath(new URL("../../.tmp/", import.meta.url));

/** Sends a request that stays in flight until aborted; resolves once the socket is connected. */
function hold(port: number, method: string, path: string): Promise<ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, agent: false });
    req.on("error", () => {}); // aborted below on purpose
    req.on("socket", (s) => s.once("connect", () => resolve(req)));
    setTimeout(() => reject(new Error(`hold(${path}): no connection within 10s`)), 10_000).unref();
    req.end();
  });
}

/** durationMs reads back what formatDuration printed: "59.9s", "1m0s", "250ms". */
function durationMs(s: string): number {
  const m = /^(?:(\d+)m)?([\d.]+)(ms|s)$/.exec(s);
  if (m === null) return NaN;
  return Number(m[1] ?? 0) * 60_000 + Number(m[2]) * (m[3] === "ms" ? 1 : 1_000);
}

describe("debugHandler", () => {
  let app: ContextServer;
  let base: string;
  let port: number;
  const held: ClientRequest[] = [];
  let userDir: string;
  let browser: BrowserContext | undefined;

  let debug: ReturnType<typeof debugHandler>;
  let tree: ReturnType<typeof debugHandler>;

  before(async () => {
    app = serve(
      async (ctx, req, res) => {
        if (req.url?.startsWith("/debug/requests")) return debug(req, res);
        if (req.url?.startsWith("/debug")) return tree(req, res);
        // "Work" that stops when the client leaves or the server shuts down.
        await context.sleep(ctx, 120_000).catch(() => {});
        if (!res.headersSent) res.end("late\n");
      },
      { timeout: 300_000 },
    );
    debug = debugHandler({ context: undefined, inflight: () => app.inflight() }, { refresh: 1 });
    tree = debugHandler(
      {
        get context() {
          return app.context;
        },
        inflight: () => app.inflight(),
      },
      { refresh: 1, title: "api <test>" },
    );
    ({ port } = await app.listen(0, "127.0.0.1"));
    base = `http://127.0.0.1:${port}`;
    held.push(await hold(port, "GET", "/slow?id=1"));
    held.push(await hold(port, "POST", "/upload/<b>x</b>?id=2"));
    await until(() => app.inflight().length === 2, 10_000, "2 requests in flight");
    userDir = await mkdtemp(join(tmpdir(), "taproot-chromium-"));
    await mkdir(shots, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    for (const r of held) r.destroy();
    await app.shutdown();
    await rm(userDir, { recursive: true, force: true });
  });

  test("serves a live HTML page of in-flight requests and the tree, checked in headless Chromium", async () => {
    browser = await launchChromium(userDir);
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);
    // A still page first (?refresh=0): a reload in the middle of a screenshot would restart it.
    const res = await page.goto(`${base}/debug/taproot?refresh=0`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.title(), "api <test> · contexts");

    const rows = await page.$$eval("#requests tbody tr.request", (trs) =>
      trs.map((tr) => ({
        method: tr.querySelector(".method")?.textContent,
        url: tr.querySelector(".url")?.textContent,
        deadline: tr.querySelector(".deadline")?.textContent,
        state: tr.querySelector(".state")?.textContent,
        context: tr.querySelector(".context")?.textContent,
      })),
    );
    // The two held requests, oldest first, query values redacted; the page's own request is not listed.
    assert.equal(rows.length, 2, `rows = ${JSON.stringify(rows)}`);
    assert.deepEqual(
      rows.map((r) => [r.method, r.url, r.state]),
      [
        ["GET", "/slow?id=…", "live"],
        ["POST", "/upload/<b>x</b>?id=…", "live"],
      ],
    );
    for (const r of rows) {
      const ms = durationMs(r.deadline ?? "");
      assert.ok(
        ms > 100_000 && ms <= 300_000,
        `deadline cell ${r.deadline}, want at most 5m0s, well above 100s`,
      );
      assert.match(r.context ?? "", /\.WithDeadline\(/);
    }
    // Escaped: the URL's markup is text, not an element.
    assert.equal(await page.$$eval("#requests b", (els) => els.length), 0);

    const tree = (await page.textContent("#tree")) ?? "";
    const lines = tree.trim().split("\n");
    assert.match(lines[0]!, /withCancel · live · 3 children/);
    // One subtree per request in flight; the two held ones sleep.
    // Each request's context is named after its request, with its age.
    for (const req of ["GET /slow?id=…", "POST /upload/<b>x</b>?id=…"]) {
      const line = lines.find((l) => l.includes(`withDeadline · ${req} · live · deadline in`));
      assert.ok(line !== undefined, `no tree line for ${req}:\n${tree}`);
      assert.match(line, / · age \d/);
    }
    assert.equal(lines.filter((l) => /1 waiting \(afterFunc\/sleep\)/.test(l)).length, 2, tree);

    const png = join(shots, "debug-page.png");
    await page.screenshot({ path: png, fullPage: true, timeout: 60_000 });
    const bytes = await readFile(png);
    assert.ok(bytes.length > 1_000, `screenshot is ${bytes.length} bytes`);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    // Without ?refresh=0 it reloads itself: a row disappears once its request ends.
    await page.goto(`${base}/debug/taproot`);
    assert.equal(
      await page.$eval('meta[http-equiv="refresh"]', (m) => m.getAttribute("content")),
      "1",
    );
    held.shift()!.destroy();
    let urls: (string | null)[] = [];
    for (let reloads = 0; reloads < 10 && urls.length !== 1; reloads++) {
      await page.waitForEvent("load");
      urls = await page.$$eval("#requests tbody tr.request .url", (tds) =>
        tds.map((td) => td.textContent),
      );
    }
    assert.deepEqual(urls, ["/upload/<b>x</b>?id=…"]);
    await page.close();
  });

  test("serves the same data as JSON with ?format=json", async () => {
    const res = await fetch(`${base}/debug/taproot?format=json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const snap = (await res.json()) as ReturnType<typeof debugSnapshot>;
    assert.ok(snap.requests.some((r) => r.method === "POST" && r.url === "/upload/<b>x</b>?id=…"));
    assert.ok(
      snap.requests.every((r) => !r.url.startsWith("/debug")),
      "the page's own request is not listed",
    );
    for (const r of snap.requests) {
      assert.equal(r.state, "live");
      assert.ok(
        r.remainingMs !== null && r.remainingMs > 100_000,
        `remainingMs = ${r.remainingMs}`,
      );
    }
    assert.equal(snap.tree?.kind, "withCancel");
  });

  test("without a context, lists requests only; other methods get 405", async () => {
    const page = await (await fetch(`${base}/debug/requests`)).text();
    assert.match(page, /No context given/);
    assert.match(page, /&lt;b&gt;x&lt;\/b&gt;/);
    assert.doesNotMatch(page, /<b>x<\/b>/);
    const res = await fetch(`${base}/debug/requests`, { method: "DELETE" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
    await res.text();
  });
});

describe("debugHandler's guards", () => {
  test("answers loopback clients by default, refuses others, and widens only when told", async () => {
    const source = { inflight: () => [] };
    const server = createServer((req, res) => {
      const allow = req.url?.includes("nobody") ? () => false : undefined;
      debugHandler(source, { allow })(req, res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      assert.equal((await fetch(`${url}/debug`)).status, 200, "a loopback client");
      const refused = await fetch(`${url}/debug/nobody`);
      assert.equal(refused.status, 403);
      assert.match(await refused.text(), /^forbidden/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
    for (const a of ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]) {
      assert.equal(isLoopback(a), true, a);
    }
    for (const a of [
      "10.0.0.1",
      "192.168.1.7",
      "::ffff:192.168.1.7",
      "2001:db8::1",
      "1127.0.0.1",
      undefined,
    ]) {
      assert.equal(isLoopback(a), false, String(a));
    }
    assert.throws(() => debugHandler(source, { allow: "everyone" as never }), {
      name: "TypeError",
      message: /options.allow must be "loopback", "any" or a function/,
    });
    assert.throws(() => debugHandler(source, 5 as never), {
      name: "TypeError",
      message: /debugHandler\(source, options\): options must be an object/,
    });
  });

  test("answers 400, not 500, to a request target it cannot parse", async () => {
    const server = createServer(debugHandler({ inflight: () => [] }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.end(
            "GET http://[::1/debug HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
          );
        });
        let text = "";
        socket.setEncoding("utf8");
        socket.on("data", (chunk: string) => (text += chunk));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
      });
      assert.match(reply, /^HTTP\/1\.1 400 /, reply);
      assert.match(reply, /could not parse the request target/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test("reloads at most once a second, redacts query values unless told, and shows serve()'s Express routes", async () => {
    const router = express.Router();
    const held = context.withCancel(context.background());
    router.get("/users/:id", async (_req, res) => {
      await held[0].done();
      res.end();
    });
    const app = express();
    app.get("/debug", (req, res) => debug(req, res));
    app.use("/api", router);
    const served = serve((_ctx, req, res) => app(req, res));
    const debug = debugHandler(served, { refresh: 0.01 });
    const { port } = await served.listen(0, "127.0.0.1");
    const base = `http://127.0.0.1:${port}`;
    const pending = fetch(`${base}/api/users/7?token=s3cret`);
    try {
      await until(() => served.inflight().length === 1, 10_000, "the request in flight");
      const page = await (await fetch(`${base}/debug?refresh=0.001`)).text();
      assert.match(page, /<meta http-equiv="refresh" content="1">/);
      assert.match(page, /\/api\/users\/7\?token=… <span class="route">\/api\/users\/:id<\/span>/);
      assert.doesNotMatch(page, /s3cret/);
      assert.doesNotMatch(page, /data-url="\/debug/, "the page's own request is listed");
      const shown = debugSnapshot(served, { showQuery: true }).requests.map((r) => r.url);
      assert.deepEqual(shown, ["/api/users/7?token=s3cret"]);
      assert.equal(redactQuery("/a?x=1&y&z=2#frag"), "/a?x=…&y&z=…");
    } finally {
      held[1]();
      await (await pending).text();
      await served.shutdown();
    }
  });
});

describe("debug page redaction", () => {
  test("hides query values in what canceled a request too: the page, its JSON and debugSnapshot()", async () => {
    const held = context.withCancel(context.background());
    const served = serve(async (_ctx, _req, res) => {
      await held[0].done();
      res.end();
    });
    const debug = debugHandler(served);
    const admin = createServer((req, res) => debug(req, res));
    await new Promise<void>((r) => admin.listen(0, "127.0.0.1", r));
    const adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}/`;
    const { port } = await served.listen(0, "127.0.0.1");
    try {
      const client = await hold(port, "GET", "/search?token=s3cret");
      await until(() => served.inflight().length === 1, 10_000, "the request in flight");
      client.destroy(); // the client leaves while the handler runs: its cause names the request
      await until(() => served.inflight()[0]?.ctx.err() != null, 10_000, "the disconnect");
      const page = await (await fetch(adminUrl)).text();
      const json = await (await fetch(`${adminUrl}?format=json`)).text();
      const snapshot = debugSnapshot(served);
      assert.match(
        snapshot.requests[0]!.cause!,
        /ClientDisconnectedError: .*GET \/search\?token=…/,
      );
      for (const [what, text] of [
        ["page", page],
        ["JSON", json],
        ["snapshot", JSON.stringify(snapshot)],
      ] as const) {
        assert.doesNotMatch(text, /s3cret/, `the ${what} shows the query value`);
      }
      assert.match(
        debugSnapshot(served, { showQuery: true }).requests[0]!.cause!,
        /token=s3cret/,
        "showQuery: true shows it",
      );
    } finally {
      held[1]();
      admin.close();
      await served.shutdown();
    }
  });
});

describe("debugSnapshot", () => {
  test("shows what canceled a request that is done but still listed", () => {
    const [ctx, cancel] = context.withCancelCause(context.background());
    cancel(new Error("client went away"));
    const snap = debugSnapshot({
      inflight: () => [
        { ctx, method: "GET", url: "/x", startedAt: Date.now() - 1_500, route: "/:id" },
      ],
    });
    assert.equal(snap.tree, null);
    assert.deepEqual(
      { ...snap.requests[0], startedAt: undefined, ageMs: undefined },
      {
        method: "GET",
        url: "/x",
        route: "/:id",
        startedAt: undefined,
        ageMs: undefined,
        deadline: null,
        remainingMs: null,
        state: "done",
        err: "context canceled",
        cause: "Error: client went away",
        context: "context.Background.WithCancel",
      },
    );
  });

  test("names debugSnapshot and the fix for a source whose context or inflight() is not what it says", () => {
    const ctx = context.background();
    const cases: [string, () => unknown, RegExp][] = [
      [
        "context: 5",
        () => debugSnapshot({ context: 5 as never }),
        /^debugSnapshot\(source, options\): source\.context must be a Context, got 5 \(number\); pass the server returned by serve\(\)/,
      ],
      [
        "inflight: 5",
        () => debugSnapshot({ context: ctx, inflight: 5 as never }),
        /^debugSnapshot\(source, options\): source\.inflight must be a method .*got 5 \(number\)/,
      ],
      [
        "inflight() => 5",
        () => debugSnapshot({ inflight: (() => 5) as never }),
        /^debugSnapshot\(source, options\): source\.inflight\(\) must return an iterable of requests \{ ctx, method, url, startedAt \}, got 5 \(number\); return an array/,
      ],
      [
        "inflight() => [{}]",
        () => debugSnapshot({ inflight: (() => [{}]) as never }),
        /^debugSnapshot\(source, options\): source\.inflight\(\) listed a request whose ctx is undefined, not a Context; give each request its context/,
      ],
      [
        "inflight() => [null]",
        () => debugSnapshot({ inflight: (() => [null]) as never }),
        /^debugSnapshot\(source, options\): source\.inflight\(\) listed null, not a request/,
      ],
    ];
    for (const [what, call, want] of cases) {
      assert.throws(call, { name: "TypeError", message: want }, what);
    }
    assert.throws(() => debugHandler({ context: 5 as never }), {
      name: "TypeError",
      message:
        /^debugHandler\(source, options\): source\.context must be a Context, got 5 \(number\)/,
    });
  });

  test("answers 500 naming debugHandler and the fix when inflight() returns no requests", async () => {
    let listed: unknown = 5;
    const server = createServer(debugHandler({ inflight: () => listed as never }));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debug`;
    try {
      for (const [value, want] of [
        [5, /debugHandler\(source, options\): source\.inflight\(\) must return an iterable/],
        [
          [{}],
          /debugHandler\(source, options\): source\.inflight\(\) listed a request whose ctx is undefined, not a Context/,
        ],
      ] as const) {
        listed = value;
        const reply = await fetch(url);
        const text = await reply.text();
        assert.equal(reply.status, 500, `status for inflight() => ${JSON.stringify(value)}`);
        assert.match(text, want);
      }
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test("rejects a source without context or inflight, naming the fix", () => {
    assert.throws(() => debugHandler({} as never), {
      name: "TypeError",
      message:
        /^debugHandler\(source, options\): source must have a context or an inflight\(\) method, got object; pass the server returned by serve\(\)/,
    });
  });
});
