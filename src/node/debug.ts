import type { IncomingMessage, ServerResponse } from "node:http";

import type { Context } from "../context.js";
import { cause } from "../cancel.js";
import { formatDuration } from "../format.js";
import { printValue, snapshotTree } from "../tree.js";
import { renderTree } from "../tree-text.js";
import type { ContextNode } from "../tree.js";
import { describeValue, isContext } from "../validate.js";
import { contextOf } from "./request-lifetime.js";

/**
 * DebugRequest is what {@link debugHandler} needs to know of a request in
 * flight: the shape of `taproot-context/node`'s `InflightRequest`, plus an optional
 * route pattern.
 *
 * @example
 * ```ts
 * const req: DebugRequest = { ctx, method: "GET", url: "/users/7", startedAt: Date.now(), route: "/users/:id" };
 * ```
 */
export interface DebugRequest {
  ctx: Context;
  method: string;
  url: string;
  /** Epoch ms when the request arrived. */
  startedAt: number;
  /** The route pattern that matched, when the router knows it. */
  route?: string;
}

/**
 * DebugSource is what {@link debugHandler} shows: a server returned by
 * `serve()` fits as is; so does any object with a base `context` and/or an
 * `inflight()` snapshot of requests.
 *
 * @example
 * ```ts
 * const source: DebugSource = { context: worker.ctx, inflight: () => jobs.map(toDebugRequest) };
 * ```
 */
export interface DebugSource {
  /** The context whose live tree the page shows, e.g. the server's base context. */
  readonly context?: Context;
  /** A snapshot of the requests being handled. */
  inflight?(): Iterable<DebugRequest>;
}

/**
 * DebugHandlerOptions configure {@link debugHandler}.
 *
 * @example
 * ```ts
 * debugHandler(app, { refresh: 5, title: "api-eu-1" });
 * ```
 */
export interface DebugHandlerOptions {
  /**
   * Seconds between reloads of the HTML page (default 2); 0 turns reloading
   * off. `?refresh=N` overrides it per visit. Reloading is never more often
   * than once a second: smaller values count as 1.
   */
  refresh?: number;
  /**
   * Who may see the page: `"loopback"` (the default) answers only clients on
   * this machine (127.0.0.0/8, ::1) and 403 to the rest; `"any"` answers
   * everyone (put it behind your own authentication); a function decides per
   * request. Behind a reverse proxy on the same machine every client looks
   * local: guard the route there too.
   */
  allow?: "loopback" | "any" | ((req: IncomingMessage) => boolean);
  /**
   * Whether URLs keep their query values (`/search?q=taxes`). Default false:
   * each value shows as `…` (`/search?q=…`), since queries carry tokens and
   * personal data. Applies to the page, its JSON and debugSnapshot().
   */
  showQuery?: boolean;
  /** The page title (default "taproot"). */
  title?: string;
  /** At most this many contexts in the tree (default 1,000). */
  maxNodes?: number;
}

/**
 * DebugRequestInfo is one in-flight request of a {@link DebugSnapshot}.
 *
 * @example
 * ```ts
 * const slow = debugSnapshot(app).requests.filter((r) => r.ageMs > 5_000);
 * ```
 */
export interface DebugRequestInfo {
  method: string;
  url: string;
  route: string | null;
  /** ISO time of arrival. */
  startedAt: string;
  ageMs: number;
  /** The request context's deadline as an ISO string, or null for none. */
  deadline: string | null;
  remainingMs: number | null;
  state: "live" | "done";
  /** `ctx.err()`'s message once the context is done. */
  err: string | null;
  /** What canceled the context (`cause(ctx)`, printed) once it is done. */
  cause: string | null;
  /** The request context's `toString()`. */
  context: string;
}

/**
 * DebugSnapshot is the data behind the debug page, and its JSON variant.
 *
 * @example
 * ```ts
 * const { requests, tree } = debugSnapshot(app);
 * ```
 */
export interface DebugSnapshot {
  /** ISO time the snapshot was taken. */
  now: string;
  /** Requests in flight, oldest first. */
  requests: DebugRequestInfo[];
  /** The live tree under the source's context, or null if it has none. */
  tree: ContextNode | null;
}

const FN = "debugHandler(source, options)";

/**
 * debugSnapshot returns what the debug page shows, as plain data: the
 * requests in flight (oldest first) with their age, deadline and state, and
 * the live context tree under `source.context`.
 *
 * @example
 * ```ts
 * setInterval(() => log.info("inflight", debugSnapshot(app).requests.length), 10_000).unref();
 * ```
 */
export function debugSnapshot(source: DebugSource, options?: DebugHandlerOptions): DebugSnapshot {
  const fn = "debugSnapshot(source, options)";
  checkSource(fn, source);
  checkDebugOptions(fn, options);
  return snapshot(fn, source, options, null);
}

/**
 * snapshot is debugSnapshot, leaving out the request whose context is `skip`
 * (the debug page's own). What `source` holds is checked here, on every
 * snapshot, and not only when the handler is made: `context` may be set and
 * `inflight()` returns something new each time.
 */
function snapshot(
  fn: string,
  source: DebugSource,
  options: DebugHandlerOptions | undefined,
  skip: unknown,
): DebugSnapshot {
  checkSourceContext(fn, source.context);
  const now = Date.now();
  const requests: DebugRequestInfo[] = [];
  const byCtx = new Map<Context, { note: string; since: number }>();
  const showQuery = options?.showQuery === true;
  // Each URL whose query is hidden, as sent and as shown: a cause names the
  // request it canceled (ClientDisconnectedError), so causes are redacted too.
  const redacted = new Map<string, string>();
  for (const r of inflightOf(fn, source)) {
    if (r.ctx === skip) continue;
    const sent = String(r.url);
    const url = showQuery ? sent : redactQuery(sent);
    if (url !== sent) redacted.set(sent, url);
    requests.push(requestInfo(r, url, now));
    byCtx.set(r.ctx, { note: `${r.method} ${r.route ?? url}`, since: r.startedAt });
  }
  requests.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const tree =
    source.context === undefined
      ? null
      : snapshotTree(source.context, {
          now,
          maxNodes: options?.maxNodes ?? 1_000,
          // Name each request's context in the tree after its request.
          annotate: (ctx) => byCtx.get(ctx),
        });
  if (redacted.size > 0) {
    for (const r of requests) r.cause = hideQueries(r.cause, redacted);
    const nodes = tree === null ? [] : [tree];
    for (let node = nodes.pop(); node !== undefined; node = nodes.pop()) {
      node.cause = hideQueries(node.cause, redacted);
      nodes.push(...node.children);
    }
  }
  return { now: new Date(now).toISOString(), requests, tree };
}

/** hideQueries replaces, in a printed cause, each URL sent by the one shown for it. */
function hideQueries(text: string | null, redacted: Map<string, string>): string | null {
  if (text === null) return null;
  for (const [sent, shown] of redacted) text = text.split(sent).join(shown);
  return text;
}

/**
 * debugHandler returns a `node:http` request handler that serves a live view
 * of `source` (a server from `serve()`, or `{ context, inflight }`), like
 * Go's `/debug/pprof`: an HTML page that reloads itself every `refresh`
 * seconds, listing the requests in flight (age, method and URL or route,
 * deadline remaining, what canceled them) and the server's context tree.
 * Add `?format=json` (or send `Accept: application/json`) for the same data
 * as JSON. The page needs no script and no build step; every value on it is
 * escaped.
 *
 * It is opt-in and shows URLs of live requests: mount it on an admin port or
 * behind authentication, never on a public route.
 *
 * @example
 * ```ts
 * const app = serve(handler);
 * const debug = debugHandler(app);
 * const admin = createServer((req, res) => (req.url?.startsWith("/debug/taproot") ? debug(req, res) : res.writeHead(404).end()));
 * admin.listen(6060, "127.0.0.1");
 * ```
 */
export function debugHandler(
  source: DebugSource,
  options?: DebugHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  checkSource(FN, source);
  checkDebugOptions(FN, options);
  const refresh = options?.refresh ?? 2;
  if (typeof refresh !== "number" || !(refresh >= 0) || !Number.isFinite(refresh)) {
    throw new TypeError(
      `${FN}: options.refresh must be a number of seconds, zero or more, got ${String(refresh)}; pass 0 to turn reloading off`,
    );
  }
  const allow = options?.allow ?? "loopback";
  if (allow !== "loopback" && allow !== "any" && typeof allow !== "function") {
    throw new TypeError(
      `${FN}: options.allow must be "loopback", "any" or a function (req) => boolean, got ${describeValue(allow)}`,
    );
  }
  const title = options?.title ?? "taproot";
  return (req, res) => {
    const allowed =
      allow === "any" ||
      (allow === "loopback" ? isLoopback(req.socket?.remoteAddress) : allow(req) === true);
    if (!allowed) {
      res.writeHead(403, { "content-type": "text/plain; charset=utf-8" });
      res.end(
        allow === "loopback"
          ? "forbidden: the taproot debug page answers clients on this machine only (debugHandler's allow option widens it)\n"
          : "forbidden\n",
      );
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      res.end(`${req.method ?? ""} not allowed: the taproot debug page answers GET and HEAD\n`);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      // A target Node accepted but URL cannot parse (`GET http://[::1/debug`): the client's fault.
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
      res.end("bad request: the taproot debug page could not parse the request target\n");
      return;
    }
    try {
      const snap = snapshot(FN, source, options, contextOf(req) ?? null);
      const json =
        url.searchParams.get("format") === "json" ||
        url.pathname.endsWith(".json") ||
        /^application\/json\b/.test(req.headers.accept ?? "");
      const asked = Number(url.searchParams.get("refresh") ?? refresh);
      const every = Number.isFinite(asked) && asked >= 0 ? asked : refresh;
      const body = json
        ? JSON.stringify(snap, null, 2) + "\n"
        : renderPage(snap, title, every === 0 ? 0 : Math.max(MIN_REFRESH_S, every));
      res.writeHead(200, {
        "content-type": json ? "application/json; charset=utf-8" : "text/html; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end(`taproot: debug page failed: ${printValue(err)}\n`);
    }
  };
}

/** The shortest time between reloads, in seconds: a page open in a tab must not load the server. */
const MIN_REFRESH_S = 1;

/**
 * isLoopback tells whether a peer address is this machine's: 127.0.0.0/8,
 * ::1, or either mapped into IPv6.
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith("::ffff:") ? address.slice(7) : address;
  return a === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** redactQuery replaces every query value of a URL with "…", keeping the names. */
export function redactQuery(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const hash = url.indexOf("#", q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  const names = query
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const eq = p.indexOf("=");
      return eq < 0 ? p : `${p.slice(0, eq)}=…`;
    });
  return `${url.slice(0, q)}?${names.join("&")}`;
}

function checkDebugOptions(fn: string, options: unknown): void {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new TypeError(
      `${fn}: options must be an object such as { refresh: 5 }, got ${describeValue(options)}; omit it for the defaults`,
    );
  }
}

function checkSource(fn: string, source: DebugSource): void {
  const ok =
    typeof source === "object" &&
    source !== null &&
    (source.context !== undefined || typeof source.inflight === "function");
  if (!ok) {
    throw new TypeError(
      `${fn}: source must have a context or an inflight() method, got ${source === null ? "null" : typeof source}; pass the server returned by serve(), or { context, inflight }`,
    );
  }
  checkSourceContext(fn, source.context);
  checkInflightMethod(fn, source.inflight);
}

function checkInflightMethod(fn: string, inflight: unknown): void {
  if (inflight === undefined || typeof inflight === "function") return;
  throw new TypeError(
    `${fn}: source.inflight must be a method returning the requests in flight, got ${describeValue(inflight)}; pass the server returned by serve(), or leave it out`,
  );
}

/** checkSourceContext throws a TypeError naming `fn` unless `source.context` is a Context or absent. */
function checkSourceContext(fn: string, ctx: unknown): void {
  if (ctx === undefined || isContext(ctx)) return;
  throw new TypeError(
    `${fn}: source.context must be a Context, got ${describeValue(ctx)}; pass the server returned by serve(), or { context } with the context whose tree you want to see (e.g. the server's base context), or leave it out`,
  );
}

/**
 * inflightOf returns what `source.inflight()` returned, checked: an iterable
 * of requests, each with its context, else a TypeError naming `fn`.
 */
function inflightOf(fn: string, source: DebugSource): DebugRequest[] {
  checkInflightMethod(fn, source.inflight);
  if (source.inflight === undefined) return [];
  const listed: unknown = source.inflight();
  if (
    listed === null ||
    typeof listed !== "object" ||
    typeof (listed as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `${fn}: source.inflight() must return an iterable of requests { ctx, method, url, startedAt }, got ${describeValue(listed)}; return an array, as serve()'s inflight() does`,
    );
  }
  const requests: DebugRequest[] = [];
  for (const r of listed as Iterable<unknown>) {
    if (r === null || typeof r !== "object") {
      throw new TypeError(
        `${fn}: source.inflight() listed ${describeValue(r)}, not a request; list objects { ctx, method, url, startedAt }`,
      );
    }
    const ctx = (r as { ctx?: unknown }).ctx;
    if (!isContext(ctx)) {
      throw new TypeError(
        `${fn}: source.inflight() listed a request whose ctx is ${describeValue(ctx)}, not a Context; give each request its context: { ctx, method, url, startedAt }`,
      );
    }
    requests.push(r as DebugRequest);
  }
  return requests;
}

function requestInfo(r: DebugRequest, url: string, now: number): DebugRequestInfo {
  const d = r.ctx.deadline()?.getTime();
  const err = r.ctx.err();
  return {
    method: String(r.method),
    url,
    route: r.route === undefined ? null : String(r.route),
    startedAt: new Date(r.startedAt).toISOString(),
    ageMs: now - r.startedAt,
    deadline: d === undefined ? null : new Date(d).toISOString(),
    remainingMs: d === undefined ? null : d - now,
    state: err === null ? "live" : "done",
    err: err === null ? null : err.message,
    cause: err === null ? null : printValue(cause(r.ctx)),
    context: String(r.ctx),
  };
}

/** escape makes any text safe inside HTML elements and quoted attributes. */
function escape(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

function remaining(ms: number | null): string {
  if (ms === null) return "none";
  return ms >= 0 ? formatDuration(ms) : `passed ${formatDuration(-ms)} ago`;
}

function renderPage(snap: DebugSnapshot, title: string, refresh: number): string {
  const rows = snap.requests
    .map(
      (r) =>
        `<tr class="request ${r.state}" data-method="${escape(r.method)}" data-url="${escape(r.url)}">` +
        `<td class="age">${escape(formatDuration(r.ageMs))}</td>` +
        `<td class="method">${escape(r.method)}</td>` +
        `<td class="url">${escape(r.url)}${r.route === null ? "" : ` <span class="route">${escape(r.route)}</span>`}</td>` +
        `<td class="deadline">${escape(remaining(r.remainingMs))}</td>` +
        `<td class="state">${r.state === "live" ? "live" : escape(`done: ${r.err ?? ""}`)}</td>` +
        `<td class="cause">${escape(r.cause ?? "")}</td>` +
        `<td class="context"><code>${escape(r.context)}</code></td></tr>`,
    )
    .join("\n");
  const tree =
    snap.tree === null
      ? `<p class="empty">No context given: pass <code>{ context }</code> to see the tree.</p>`
      : `<pre id="tree">${escape(renderTree(snap.tree))}</pre>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
${refresh > 0 ? `<meta http-equiv="refresh" content="${refresh}">\n` : ""}<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · contexts</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d2125; background: #fff; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .5rem; }
.meta { color: #5c6670; margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #e3e6e8; vertical-align: top; }
th { font-weight: 600; background: #f4f6f7; }
td.age, td.deadline { white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.done td.state { color: #a4262c; } tr.live td.state { color: #1a7f37; }
.route { color: #5c6670; } code, pre { font: 12.5px/1.4 ui-monospace, monospace; }
pre { background: #f4f6f7; padding: .8rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escape(title)} · contexts</h1>
<p class="meta">${escape(snap.now)} · ${refresh > 0 ? `reloads every ${refresh} s` : "not reloading"} · <a href="?format=json">JSON</a></p>
<h2>In-flight requests (<span id="count">${snap.requests.length}</span>)</h2>
<table id="requests">
<thead><tr><th>Age</th><th>Method</th><th>URL</th><th>Deadline in</th><th>State</th><th>Canceled by</th><th>Context</th></tr></thead>
<tbody>
${rows || `<tr class="none"><td colspan="7">No request in flight.</td></tr>`}
</tbody>
</table>
<h2>Context tree</h2>
${tree}
</body>
</html>
`;
}
