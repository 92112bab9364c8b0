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
import {
  resolvePolicy,
  withParent,
  type RequestContextOptions,
  type RequestPolicy,
} from "../fetch/request-context.js";
import {
  bindRequest,
  RequestSet,
  watchAtTurnEnd,
  watchReturned,
  type RequestLifetime,
} from "./request-lifetime.js";

/**
 * InflightRequest describes a request that a {@link serve} server is handling:
 * its context, method, target and the time it arrived (epoch ms).
 *
 * @example
 * ```ts
 * for (const r of app.inflight()) {
 *   console.log(`${r.method} ${r.url} running for ${Date.now() - r.startedAt} ms`);
 * }
 * ```
 */
export interface InflightRequest {
  ctx: Context;
  method: string;
  /** The target as the client sent it (before any router rewrote `req.url`). */
  url: string;
  startedAt: number;
  /** The route pattern that matched, when the handler is an Express app that set `req.route`. */
  route?: string;
}

/**
 * Handler handles one request of a {@link serve} server. `ctx` is the
 * request's context (also returned by `requestContext(req)`). A rejection or
 * throw becomes a 500, or a 503 when `ctx` is done, if nothing was sent yet,
 * and resets a response already begun; `ctx` then ends with the error as its
 * cause, unless it had ended already.
 *
 * @example
 * ```ts
 * const hello: Handler = async (ctx, req, res) => {
 *   const name = await users.lookup(ctx, req.headers["x-user-id"]);
 *   res.end(`hello ${name}\n`);
 * };
 * ```
 */
export type Handler = (ctx: Context, req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * ServeOptions configure {@link serve}.
 *
 * @example
 * ```ts
 * const app = serve(handler, {
 *   context: root, // from signalContext(background())
 *   timeout: 5_000,
 *   shutdownTimeout: 20_000,
 *   server: https.createServer({ key, cert }),
 * });
 * ```
 */
export interface ServeOptions extends RequestContextOptions {
  /**
   * The server's base context, Go's `BaseContext`: request contexts see its
   * values. Its cancellation does not cut requests short: it starts a graceful
   * shutdown with a grace period of `shutdownTimeout`, so one root from
   * `signalContext()` can stop the server and the workers alike.
   */
  context?: Context;
  /** The grace period in milliseconds of the shutdown started by `context` ending. Default 10,000. */
  shutdownTimeout?: number;
  /**
   * The server to serve on, e.g. from `https.createServer(tls)`, with no
   * 'request' listener of its own. Default: a new `http.createServer()`.
   */
  server?: Server;
  /**
   * onError reports a handler's failure that is not its context's own
   * cancellation. Default: `console.error`.
   */
  onError?: (ctx: Context, err: unknown, req: IncomingMessage) => void;
}

/**
 * ShutdownResult counts how a shutdown ended the requests it found in flight.
 * A connection an 'upgrade' or 'connect' listener took over (a WebSocket, a
 * tunnel) is no request, and counts in neither.
 *
 * @example
 * ```ts
 * const { completed, canceled } = await app.shutdown(graceCtx);
 * console.log(`drained ${completed} request(s), canceled ${canceled}`);
 * ```
 */
export interface ShutdownResult {
  /** Requests that finished during the grace period. */
  completed: number;
  /** Requests whose context was canceled when the grace period ran out. */
  canceled: number;
}

/**
 * ContextServer is a server started by {@link serve}.
 *
 * @example
 * ```ts
 * const app: ContextServer = serve(handler);
 * const { port } = await app.listen(8080);
 * // ...
 * const [grace, cancel] = withTimeout(background(), 10_000);
 * await app.shutdown(grace);
 * cancel();
 * ```
 */
export interface ContextServer extends AsyncDisposable {
  /** The underlying `node:http` (or `node:https`) server. */
  readonly server: Server;
  /** The server's context: the parent of every request context. It ends when the server has stopped. */
  readonly context: Context;
  /** Settles once the server has stopped, by {@link ContextServer.shutdown} or by its base context ending. */
  readonly closed: Promise<ShutdownResult>;
  /** inflight returns a snapshot of the requests being handled, oldest first. */
  inflight(): InflightRequest[];
  /** listen starts accepting connections on `port` (default 0, any free port) and resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * shutdown stops accepting connections, closes idle keep-alive connections
   * at once, lets requests in flight finish until `ctx` is done, then cancels
   * the rest (cause {@link ShutdownError}) and closes their connections. A
   * connection an 'upgrade' or 'connect' listener took over (a WebSocket, a
   * tunnel) is the app's to close: it is left open until `ctx` is done, and
   * destroyed with the connections of handlers that ignored their context.
   * It resolves when every connection is closed; calling it again joins the
   * same shutdown, and the earliest `ctx` to end cuts the grace period.
   */
  shutdown(ctx?: Context): Promise<ShutdownResult>;
}

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

/** Per connection: how many of its requests are in flight. */
const kActive = Symbol("taproot.activeRequests");
/** Per connection: when it opened (epoch ms), until its first request arrives. */
const kOpenedAt = Symbol("taproot.openedAt");
/**
 * Per connection: set when an 'upgrade' or 'connect' listener took it over
 * from HTTP (a WebSocket, a CONNECT tunnel). No request of serve()'s runs on
 * it, so it counts none in flight, yet it is not idle: the drain leaves it to
 * its new owner, and only the hammer destroys it.
 */
const kTakenOver = Symbol("taproot.takenOver");
type Conn = Socket & { [kActive]?: number; [kOpenedAt]?: number; [kTakenOver]?: true };

/** isIdle tells whether a drain may close `socket` now: no request of ours on it, and not taken over. */
function isIdle(socket: Conn): boolean {
  return socket[kActive] === 0 && socket[kTakenOver] === undefined;
}

/**
 * How long a connection that has sent no request yet may stay open once a
 * shutdown has begun, counted from when it opened: a first request may be on
 * its way (Go's Shutdown waits for such connections too, golang/go#22682).
 * One that has been silent longer is closed at once.
 */
const NEW_CONNECTION_GRACE_MS = 500;

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
  /** Closes the new connections that sent no request in their grace period; set during a drain. */
  #newConnections: ReturnType<typeof setTimeout> | undefined;
  /** Stops watching the base context; cleared at shutdown. */
  #stopBaseWatch: (() => boolean) | undefined;
  /**
   * Open connections: each enters at 'connection' and leaves at its 'close';
   * its count of requests in flight is kept on it (kActive). Node's own
   * closeIdleConnections() does not count a connection that has not sent a
   * request yet as idle (fetch opens such spare connections), and would leave
   * it to hold the shutdown open.
   */
  readonly #conns = new Set<Conn>();
  /**
   * Over TLS, every TCP connection, from its 'connection' to its 'close':
   * one still in its handshake is in no other list, and would hold the
   * shutdown open past its grace period (Node gives a handshake 120 s). The
   * hammer destroys them with the rest. Empty for a plain HTTP server.
   */
  readonly #tcp = new Set<Socket>();

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
    // Over TLS the request's socket is the TLSSocket of 'secureConnection'.
    const connectionEvent = this.server instanceof HttpsServer ? "secureConnection" : "connection";
    if (this.server instanceof HttpsServer) {
      this.server.on("connection", (socket: Socket) => {
        this.#tcp.add(socket);
        socket.once("close", () => this.#tcp.delete(socket));
      });
    }
    this.server.on(connectionEvent, (socket: Conn) => {
      socket[kActive] = 0;
      socket[kOpenedAt] = Date.now();
      this.#conns.add(socket);
      socket.once("close", () => this.#conns.delete(socket));
    });
    watchTakeovers(this.server);
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
    const socket = req.socket as Conn;
    if (socket[kActive] !== undefined) {
      socket[kActive]++;
      socket[kOpenedAt] = undefined;
    }
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
    const socket = (ctx.req as IncomingMessage).socket as Conn | null;
    if (socket !== null && socket[kActive] !== undefined) socket[kActive]--;
    if (!this.#draining) return;
    if (!this.#forced) this.#result.completed++;
    if (socket !== null && isIdle(socket)) closeConnection(socket);
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
    const socket = req.socket as Conn | null;
    if (socket === null || !(socket[kActive]! > 0)) return;
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
    this.#closeIdle();
  }

  /** closeIdle closes the connections with no request in flight, but for those still in their first moments. */
  #closeIdle(): void {
    const now = Date.now();
    let wait = Infinity;
    for (const socket of this.#conns) {
      if (!isIdle(socket)) continue;
      const opened = socket[kOpenedAt];
      if (opened !== undefined && now - opened < NEW_CONNECTION_GRACE_MS) {
        wait = Math.min(wait, opened + NEW_CONNECTION_GRACE_MS - now);
      } else {
        closeConnection(socket);
      }
    }
    if (wait !== Infinity) {
      this.#newConnections = setTimeout(() => this.#closeIdle(), Math.max(wait, 1));
    }
  }

  #force(): void {
    if (this.#forced || this.#finished) return;
    this.#forced = true;
    this.#result.canceled = this.#requests.count;
    // One cancel reaches every request context: they are all children.
    this.#cancel(this.#shutdownError());
    // No more waiting for the first request of new connections.
    clearTimeout(this.#newConnections);
    for (const socket of this.#conns) if (isIdle(socket)) closeConnection(socket);
    // Handlers that honour their context answer within a few turns; the
    // connections of the others are closed.
    this.#hammer = setTimeout(() => {
      for (const socket of this.#conns) socket.destroy();
      for (const socket of this.#tcp) socket.destroy();
    }, HAMMER_MS);
  }

  #shutdownError(): ShutdownError {
    return new ShutdownError(this.#base.err() !== null ? cause(this.#base) : undefined);
  }

  #finish(): void {
    this.#finished = true;
    clearTimeout(this.#hammer);
    clearTimeout(this.#newConnections);
    this.#cancel(this.#shutdownError());
    this.#resolveClosed({ ...this.#result });
  }
}

/**
 * watchTakeovers marks each connection that an 'upgrade' or 'connect'
 * listener of the server takes over (see kTakenOver). The marking listener is
 * on an event only while one of the app's is: with none, Node answers an
 * upgrade as a plain request and destroys a CONNECT's socket, and a listener
 * of ours alone would change that. It goes first, so that the socket is
 * marked even if the app's listener throws.
 */
function watchTakeovers(server: Server): void {
  const mark = (_req: IncomingMessage, socket: Conn): void => {
    socket[kTakenOver] = true;
  };
  const takeover = (event: string | symbol): event is "upgrade" | "connect" =>
    event === "upgrade" || event === "connect";
  for (const event of ["upgrade", "connect"] as const) {
    if (server.listenerCount(event) > 0) server.prependListener(event, mark);
  }
  // 'newListener' comes before the app's listener is added, 'removeListener' after it is gone.
  server.on("newListener", (event: string | symbol, listener: unknown) => {
    if (takeover(event) && listener !== mark && !server.listeners(event).includes(mark)) {
      server.prependListener(event, mark);
    }
  });
  server.on("removeListener", (event: string | symbol, listener: unknown) => {
    if (takeover(event) && listener !== mark && server.listeners(event).every((l) => l === mark)) {
      server.off(event, mark);
    }
  });
}

/**
 * closeConnection ends a connection that has no request in flight: FIN after
 * whatever is still buffered, then release, where an immediate destroy could
 * reset a response still in the kernel's buffer.
 */
export function closeConnection(socket: Socket): void {
  socket.end();
  if (socket.writableFinished) socket.destroy();
  else socket.once("finish", () => socket.destroy());
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
