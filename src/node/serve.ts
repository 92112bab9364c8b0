import {
  createServer,
  Server as HttpServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import {
  afterFunc,
  background,
  cause,
  withCancelCause,
  withoutCancel,
  withTimeout,
  type CancelCauseFunc,
  type Context,
} from "../index.js";
import { checkContext, checkMs, checkOptions, describeValue } from "../validate.js";
import { ShutdownError } from "./errors.js";
import { resolvePolicy, withParent, type RequestPolicy } from "../fetch/request-context.js";
import { Connections } from "./connections.js";
import {
  bindRequest,
  RequestSet,
  watchAtTurnEnd,
  watchReturned,
  type RequestLifetime,
} from "./request-lifetime.js";

import type {
  ContextServer,
  Handler,
  InflightRequest,
  ServeOptions,
  ShutdownResult,
} from "./serve-types.js";

/** How long handlers whose context the shutdown canceled get to answer before their connections are closed. */
const HAMMER_MS = 1_000;

/**
 * serve returns a server that calls `handler(ctx, req, res)` for every
 * request, with the request's context (see {@link requestContext}) and a
 * graceful {@link ContextServer.shutdown}. Call `listen()` to start it, and
 * `shutdown()` (or cancel `options.context`) to stop it.
 *
 * @example
 * ```ts
 * const [root, stop] = signalContext(background());
 * const app = serve(async (ctx, req, res) => {
 *   await sleep(ctx, 100); // "database work" that stops when the client leaves
 *   res.end("ok\n");
 * }, { context: root, timeout: 5_000 });
 * await app.listen(8080);
 * await root.done(); // SIGINT or SIGTERM
 * stop(); // from here a second signal ends the process at once
 * await app.closed; // drained for up to 10 s (shutdownTimeout), then closed
 * ```
 */
export function serve(handler: Handler, options?: ServeOptions): ContextServer {
  const fn = "serve(handler, options)";
  if (typeof handler !== "function") {
    throw new TypeError(
      `${fn}: handler must be a function (ctx, req, res) => ..., got ${describeValue(handler)}`,
    );
  }
  checkOptions(fn, options);
  if (options?.server !== undefined) checkServer(fn, options.server);
  if (options?.onError !== undefined && typeof options.onError !== "function") {
    throw new TypeError(
      `${fn}: options.onError must be a function, got ${describeValue(options.onError)}`,
    );
  }
  const grace =
    options?.shutdownTimeout === undefined
      ? 10_000
      : checkMs(fn, "options.shutdownTimeout", options.shutdownTimeout, false);
  return new Serving(handler, options ?? {}, resolvePolicy(fn, options), grace);
}

/**
 * checkServer accepts an `http.Server` or `https.Server`. An HTTP/2 server is
 * refused: its compatibility requests share a session, not a socket, so the
 * drain could not tell when a connection is idle; such a server can still
 * give every request a context with requestContext(req).
 */
function checkServer(fn: string, server: unknown): void {
  if (server instanceof HttpServer || server instanceof HttpsServer) {
    // A handler of its own would answer the same requests: both would write each response.
    if (server.listenerCount("request") > 0) {
      throw new TypeError(
        `${fn}: options.server already has a 'request' listener (a handler passed to createServer(), or server.on("request")); create it without one, e.g. http.createServer(), and let serve() call your handler`,
      );
    }
    return;
  }
  const name = (server as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  if (name === "Http2Server" || name === "Http2SecureServer") {
    throw new TypeError(
      `${fn}: options.server is an HTTP/2 server, which serve() does not drive; use http.createServer() or https.createServer(), or keep the HTTP/2 server and call requestContext(req) in its handler`,
    );
  }
  throw new TypeError(
    `${fn}: options.server must be an http.Server or https.Server (from http.createServer() or https.createServer()), got ${describeValue(server)}`,
  );
}

class Serving implements ContextServer {
  readonly server: Server;
  // The server's lifetime context: it lives exactly as long as the server, and
  // the debug page reads it. Never handed to work that outlives the server.
  // eslint-disable-next-line taproot/no-stored-context
  readonly context: Context;
  readonly closed: Promise<ShutdownResult>;
  readonly #handler: Handler;
  readonly #policy: RequestPolicy;
  readonly #onError: (ctx: Context, err: unknown, req: IncomingMessage) => void;
  // Read at shutdown, for the cause it ended with.
  // eslint-disable-next-line taproot/no-stored-context
  readonly #base: Context;
  readonly #cancel: CancelCauseFunc;
  /** The requests in flight, oldest first. */
  readonly #requests = new RequestSet((l) => this.#released(l));
  #resolveClosed!: (r: ShutdownResult) => void;
  /** Set by the first shutdown() call; from then on responses close their connection. */
  #draining = false;
  /** Set when the grace period ran out and the remaining requests were canceled. */
  #forced = false;
  #finished = false;
  #result: ShutdownResult = { completed: 0, canceled: 0 };
  #hammer: ReturnType<typeof setTimeout> | undefined;
  /** Stops watching the base context; cleared at shutdown. */
  #stopBaseWatch: (() => boolean) | undefined;
  /** The server's connections, with their requests in flight, for the drain. */
  readonly #connections: Connections;

  constructor(handler: Handler, options: ServeOptions, policy: RequestPolicy, grace: number) {
    this.#handler = handler;
    this.#onError = options.onError ?? reportError;
    this.#base = policy.parent;
    // The server's own context keeps the base's values but not its
    // cancellation: the base ending means "drain", not "drop everything".
    const [ctx, cancel] = withCancelCause(withoutCancel(policy.parent));
    this.context = ctx;
    this.#cancel = cancel;
    this.#policy = withParent(ctx, policy);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.server = options.server ?? createServer();
    this.server.on("request", (req: IncomingMessage, res: ServerResponse) =>
      this.#handle(req, res),
    );
    this.#connections = new Connections(this.server);
    if (this.#base.done() !== null) {
      this.#stopBaseWatch = afterFunc(this.#base, () => {
        const [graceCtx, cancelGrace] = withTimeout(background(), grace);
        void this.shutdown(graceCtx).finally(cancelGrace);
      });
    }
  }

  inflight(): InflightRequest[] {
    const out: InflightRequest[] = [];
    for (let l = this.#requests.head; l !== null; l = l.newer) {
      const r: InflightRequest = {
        ctx: l,
        method: l.method,
        url: l.url,
        startedAt: l.startedAt,
      };
      const route = routeOf(l.req as IncomingMessage);
      if (route !== undefined) r.route = route;
      out.push(r);
    }
    return out;
  }

  listen(port = 0, host?: string): Promise<AddressInfo> {
    if (this.#draining) {
      return Promise.reject(
        new Error("listen(port, host): the server is shutting down; create a new one with serve()"),
      );
    }
    return new Promise((resolve, reject) => {
      const server = this.server;
      // Whichever comes first settles, and takes all three listeners off.
      const settled = (): void => {
        server.off("error", onError);
        server.off("listening", onListening);
        server.off("close", onClose);
      };
      const onError = (err: Error): void => {
        settled();
        reject(err);
      };
      const onListening = (): void => {
        settled();
        resolve(server.address() as AddressInfo);
      };
      // shutdown() before the server was listening: Node then never says 'listening'.
      const onClose = (): void => {
        settled();
        reject(
          new Error(
            "listen(port, host): the server was shut down before it was listening; create a new one with serve()",
          ),
        );
      };
      server.once("error", onError);
      server.once("listening", onListening);
      server.once("close", onClose);
      try {
        server.listen(port, host);
      } catch (err) {
        // A server that listens already, or bad arguments: node throws at once.
        onError(err as Error);
      }
    });
  }

  shutdown(ctx: Context = background()): Promise<ShutdownResult> {
    checkContext("shutdown(ctx)", "ctx", ctx);
    if (!this.#draining) this.#startShutdown();
    if (!this.#finished) {
      const stop = afterFunc(ctx, () => this.#force());
      void this.closed.then(stop);
    }
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // Disposal means "now": no grace period.
    const [ctx, cancel] = withCancelCause(background());
    cancel();
    await this.shutdown(ctx);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    // During a drain a keep-alive client must reconnect elsewhere.
    if (this.#draining) this.#lastOnConnection(req, res);
    // The response is watched once the handler returns: one the handler
    // finished needs no listener (see Watch).
    const l = bindRequest(req, res, this.#policy, this.#requests, "caller");
    this.#connections.requestStarted(req.socket);
    let result: unknown;
    try {
      result = this.#handler(l, req, res);
    } catch (err) {
      watchReturned(l);
      this.#fail(l, err);
      l.handlerReturned();
      return;
    }
    if (isThenable(result)) {
      // An async handler most often answers within this turn of the event
      // loop: watched once the turn is over, its response needs no listener.
      watchAtTurnEnd(l);
      result.then(
        () => l.handlerReturned(),
        (err: unknown) => {
          this.#fail(l, err);
          l.handlerReturned();
        },
      );
    } else {
      watchReturned(l);
      l.handlerReturned();
    }
  }

  /**
   * released runs once a request's response closed and its handler returned
   * (its context has just ended). During a drain it also closes the
   * connection if that was its last request.
   */
  #released(ctx: RequestLifetime): void {
    // Called by release() before it drops the request.
    const socket = (ctx.req as IncomingMessage).socket as Socket | null;
    if (socket !== null) this.#connections.requestEnded(socket);
    if (!this.#draining) return;
    if (!this.#forced) this.#result.completed++;
    if (socket !== null) this.#connections.closeIfIdle(socket);
  }

  #fail(ctx: RequestLifetime, err: unknown): void {
    // The handler has not returned yet: the request is not released.
    const res = ctx.res as ServerResponse;
    const done = ctx.err();
    const expected =
      done !== null &&
      (err === done ||
        err === cause(ctx) ||
        (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")));
    if (!expected) this.#onError(ctx, err, ctx.req as IncomingMessage);
    // The handler is done, as when it returns, and its failure is why: work
    // it started stops here, and the reset below is not the client leaving.
    ctx.handlerFailed(err);
    if (ctx.responseClosed || res.writableEnded) return;
    if (res.headersSent) {
      // Half a response cannot be fixed; a reset tells the client it is broken.
      res.destroy();
      return;
    }
    const status = done !== null ? 503 : 500;
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(`${STATUS_CODES[status]}\n`);
  }

  /**
   * lastOnConnection marks `res` as its connection's last response
   * (`connection: close`), during a drain, and unmarks the responses still
   * unsent before it on the same connection. Node closes a connection once a
   * response that says close is sent, and would drop the responses to
   * requests pipelined behind it.
   */
  #lastOnConnection(req: IncomingMessage, res: ServerResponse): void {
    if (!res.headersSent) res.setHeader("connection", "close");
    const socket = req.socket as Socket | null;
    if (socket === null || !this.#connections.busy(socket)) return;
    for (let l = this.#requests.head; l !== null; l = l.newer) {
      const earlier = l.res as ServerResponse | undefined;
      if (earlier === res || earlier === undefined || earlier.headersSent) continue;
      if ((l.req as IncomingMessage | null)?.socket === socket) earlier.removeHeader("connection");
    }
  }

  #startShutdown(): void {
    this.#draining = true;
    this.#stopBaseWatch?.();
    this.#requests.closeConnectionsAfterNewest();
    // close() refuses new connections; its callback runs once the last one
    // is gone. Idle keep-alive connections are closed now, busy ones as their
    // last request ends, so a parked client cannot hold the shutdown open.
    // A connection that opened a moment ago and has sent nothing yet gets
    // the rest of its grace: its first request may be on its way.
    this.server.close(() => this.#finish());
    this.#connections.closeIdle();
  }

  #force(): void {
    if (this.#forced || this.#finished) return;
    this.#forced = true;
    this.#result.canceled = this.#requests.count;
    // One cancel reaches every request context: they are all children.
    this.#cancel(this.#shutdownError());
    // No more waiting for the first request of new connections.
    this.#connections.closeIdleNow();
    // Handlers that honour their context answer within a few turns; the
    // connections of the others are closed.
    this.#hammer = setTimeout(() => this.#connections.destroyAll(), HAMMER_MS);
  }

  #shutdownError(): ShutdownError {
    return new ShutdownError(this.#base.err() !== null ? cause(this.#base) : undefined);
  }

  #finish(): void {
    this.#finished = true;
    clearTimeout(this.#hammer);
    this.#connections.stopWaiting();
    this.#cancel(this.#shutdownError());
    this.#resolveClosed({ ...this.#result });
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as { then?: unknown }).then === "function"
  );
}

/** routeOf reads the route Express matched (`req.route`, under its router's `req.baseUrl`), if any. */
function routeOf(req: IncomingMessage): string | undefined {
  const r = req as { route?: { path?: unknown }; baseUrl?: unknown };
  const path = r.route?.path;
  if (typeof path !== "string") return undefined;
  return (typeof r.baseUrl === "string" ? r.baseUrl : "") + path;
}

function reportError(_ctx: Context, err: unknown, req: IncomingMessage): void {
  console.error(`serve: handler for ${req.method} ${req.url} failed:`, err);
}
