import type {
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from "fastify";
import type { Socket } from "node:net";
import fp from "fastify-plugin";
import {
  afterFunc,
  background,
  cause,
  withCancelCause,
  withoutCancel,
  withTimeout,
  type Context,
} from "../index.js";
import { resolvePolicy } from "../fetch/request-context.js";
import {
  debugHandler,
  ShutdownError,
  type DebugRequest,
  type DebugSource,
  type RequestContextOptions,
  type ShutdownResult,
} from "../node/index.js";
import {
  bindRequest,
  boundContext,
  contextOf,
  RequestSet,
  type RequestLifetime,
} from "../node/request-lifetime.js";
import { closeConnection } from "../node/connections.js";
import { handlerTimeoutHook } from "./handler-timeout.js";
import { checkContext, checkMs, checkOptions, describeValue } from "../validate.js";

/**
 * ContextPluginOptions configure {@link contextPlugin}: the options of
 * `requestContext` (parent, per-request `timeout`, deadline headers), plus
 * the grace period of `app.close()` and an optional debug route.
 *
 * @example
 * ```ts
 * await app.register(contextPlugin, {
 *   context: root, // from signalContext(background()): its end closes the app
 *   timeout: 5_000, // no request runs longer than 5 s
 *   shutdownTimeout: 20_000, // app.close() drains for up to 20 s
 * });
 * ```
 */
export interface ContextPluginOptions extends RequestContextOptions {
  /**
   * The application's base context, Go's `BaseContext`: request contexts see
   * its values. Its end does not cut requests short: it calls `app.close()`,
   * which drains for `shutdownTimeout`; one that ends before the app listens
   * closes it as soon as `listen()` has bound the port. Default `background()`.
   */
  context?: Context;
  /**
   * The grace period of `app.close()` in milliseconds: requests still running
   * after it are canceled. `Infinity` means no limit. Default 10,000.
   */
  shutdownTimeout?: number;
  /**
   * A path at which to serve taproot's debug page (`debugHandler`) for this
   * app, e.g. `"/debug/taproot"`. Default: none. It shows the URLs of live
   * requests: register the plugin with it only on an admin listener or behind
   * authentication.
   */
  debugPath?: string;
}

/**
 * TaprootFastify is `app.taproot`: the app's context, its requests in flight
 * and how its close ended. It is a `DebugSource`, so `debugHandler(app.taproot)`
 * serves the debug page anywhere.
 *
 * @example
 * ```ts
 * await app.close();
 * const { completed, canceled } = await app.taproot.closed;
 * ```
 */
export interface TaprootFastify extends DebugSource {
  /** The parent of every request context. Canceled when the grace period of `app.close()` runs out, and when the app has closed. */
  readonly context: Context;
  /** Settles when the app has closed, with how the requests in flight at `app.close()` ended. */
  readonly closed: Promise<ShutdownResult>;
  /** inflight returns a snapshot of the requests being handled, oldest first, each with its route pattern. */
  inflight(): DebugRequest[];
}

declare module "fastify" {
  interface FastifyRequest {
    /**
     * The request's taproot context: canceled when the client disconnects
     * before the reply is sent, at the request's deadline, when the grace
     * period of `app.close()` runs out, and once the reply has been sent.
     * Read-only: a getter over the context bound to `request.raw` (undefined
     * only in an onRequest hook that runs before the plugin's).
     */
    readonly ctx: Context;
  }
  interface FastifyInstance {
    /** The taproot plugin's view of the app (see `TaprootFastify`). */
    taproot: TaprootFastify;
  }
}

const FN = "app.register(contextPlugin, options)";
/** How long handlers whose context the shutdown canceled get to reply before their connections are closed (as serve()). */
const HAMMER_MS = 1_000;
/**
 * Tracker keeps the app's requests in flight and runs the close: it lives
 * exactly as long as the Fastify instance it was registered on.
 */
class Tracker implements TaprootFastify {
  // The app's lifetime context, read by the debug page; never handed to work that outlives the app.
  // eslint-disable-next-line taproot/no-stored-context
  readonly context: Context;
  readonly closed: Promise<ShutdownResult>;
  readonly cancel: (cause?: unknown) => void;
  // Read at shutdown, for the cause it ended with.
  // eslint-disable-next-line taproot/no-stored-context
  readonly base: Context;
  /**
   * The requests in flight, oldest first: each request's own lifetime (the
   * one taproot/node's request layer keeps for its context) is its entry,
   * released by the response's close listener that layer already has, so
   * tracking a request costs no listener and no allocation of its own.
   */
  readonly requests = new RequestSet((l) => {
    if (!this.draining) return;
    if (!this.forced) this.result.completed++;
    closeIfIdle(l, this.requests);
  });
  /** Set by preClose; from then on requests that end count as completed (or canceled). */
  draining = false;
  /** Set when the grace period ran out and the requests left were canceled. */
  forced = false;
  result: ShutdownResult = { completed: 0, canceled: 0 };
  resolveClosed!: (r: ShutdownResult) => void;
  /** Ends the grace period without canceling anything; set by preClose, called at onClose. */
  stopGrace: (() => void) | undefined;
  /** Set when the grace period runs out; cleared at onClose. */
  hammer: ReturnType<typeof setTimeout> | undefined;
  /** Stops watching the base context; called once the close starts. */
  stopBaseWatch: (() => boolean) | undefined;

  constructor(parent: Context) {
    this.base = parent;
    // The app's own context keeps the base's values but not its
    // cancellation: the base ending means "drain", not "drop everything".
    const [ctx, cancel] = withCancelCause(withoutCancel(parent));
    this.context = ctx;
    this.cancel = cancel;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  inflight(): DebugRequest[] {
    const out: DebugRequest[] = [];
    for (let l = this.requests.head; l !== null; l = l.newer) {
      // The route pattern is read here, not per request: only the debug page pays for it.
      const route = (l.frameworkRequest as FastifyRequest | null)?.routeOptions.url;
      out.push({
        ctx: l,
        method: l.method,
        url: l.url,
        startedAt: l.startedAt,
        ...(route === undefined ? {} : { route }),
      });
    }
    return out;
  }

  shutdownError(): ShutdownError {
    return new ShutdownError(this.base.err() !== null ? cause(this.base) : undefined);
  }
}

const plugin: FastifyPluginCallback<ContextPluginOptions> = (app, options, done) => {
  // A throw here would escape avvio as an uncaught exception; register() rejects with it instead.
  try {
    // Fastify passes {} when register() is given no options.
    setup(app, checkOptions(FN, options) ?? {});
  } catch (err) {
    done(err as Error);
    return;
  }
  done();
};

function setup(app: FastifyInstance, o: ContextPluginOptions): void {
  if (o.context !== undefined) checkContext(FN, "options.context", o.context);
  if (o.timeout !== undefined) checkMs(FN, "options.timeout", o.timeout, false);
  if (o.maxHeaderTimeout !== undefined) {
    checkMs(FN, "options.maxHeaderTimeout", o.maxHeaderTimeout, false);
  }
  const graceMs =
    o.shutdownTimeout === undefined
      ? 10_000
      : checkMs(FN, "options.shutdownTimeout", o.shutdownTimeout, false);
  if (
    o.debugPath !== undefined &&
    (typeof o.debugPath !== "string" || !o.debugPath.startsWith("/"))
  ) {
    throw new TypeError(
      `${FN}: options.debugPath must be a path starting with "/", got ${describeValue(o.debugPath)}; pass e.g. "/debug/taproot", or leave it out`,
    );
  }
  const base = o.context ?? background();
  const tracker = new Tracker(base);
  // One policy for the app, checked once: binding a request costs no option parsing.
  const policy = resolvePolicy(FN, {
    context: tracker.context,
    timeout: o.timeout,
    deadlineHeaders: o.deadlineHeaders,
    maxHeaderTimeout: o.maxHeaderTimeout,
  });

  // A getter on Fastify's request prototype, which reads the context bound
  // to the raw request: nothing to store per request. A field would be set by
  // Fastify for every request, then set again here, and that second store
  // (null, then a context) took V8 off its fast path for Fastify's requests,
  // costing more than the whole binding (BENCHMARKS.md).
  app.decorateRequest("ctx", {
    getter(this: FastifyRequest): Context {
      return contextOf(this.raw) as Context;
    },
  });
  app.decorate("taproot", tracker as TaprootFastify);
  const closeAllConnections = connectionCloser(app.server);

  app.addHook(
    "onRequest",
    (request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction) => {
      const raw = request.raw;
      // The request's lifetime ends at the response's close, never the
      // request's: that one fires once a body has been read
      // (nodejs/node#40775), which is also why Fastify's own request.signal
      // aborts every POST (fastify#6725). A request serve() already bound
      // keeps its context, and stays out of this app's list.
      if (contextOf(raw) === undefined) {
        const l = bindRequest(raw, reply.raw, policy, tracker.requests);
        // Nothing waits for the handler here: the response's close releases the request.
        l.handlerReturned();
        // Kept in the lifetime, not on the raw request: one property fewer added to every IncomingMessage.
        l.frameworkRequest = request;
      }
      next();
    },
  );

  // A handler or hook that throws or rejects: the request's context ends
  // with that error as cause, as under serve(), before Fastify sends its
  // error reply; one that had ended already (a deadline, the client
  // leaving) keeps its cause. Only failing requests run this hook.
  app.addHook(
    "onError",
    (
      request: FastifyRequest,
      _reply: FastifyReply,
      error: Error,
      next: HookHandlerDoneFunction,
    ) => {
      boundContext(request.raw)?.handlerFailed(error);
      next();
    },
  );

  // A route's handlerTimeout (or the server's) is a deadline of its
  // requests' contexts: a hook of its own, so other routes pay nothing. Only
  // routes declared after the plugin are seen, as with Fastify's onRoute.
  const serverHandlerTimeout = (app.initialConfig as { handlerTimeout?: number }).handlerTimeout;
  app.addHook("onRoute", (route) => {
    const ms = route.handlerTimeout || serverHandlerTimeout || 0;
    if (!(ms > 0)) return;
    const hook = handlerTimeoutHook(ms, route.url);
    const own = route.onRequest;
    route.onRequest = own === undefined ? [hook] : [...(Array.isArray(own) ? own : [own]), hook];
  });

  // app.close(): Fastify runs preClose, stops accepting and waits for the
  // connections to end; the grace timer cancels what is still running.
  app.addHook("preClose", (next: HookHandlerDoneFunction) => {
    tracker.draining = true;
    tracker.stopBaseWatch?.();
    // As serve(): a reply not yet sent closes its connection, which would
    // otherwise stay open, idle, until the grace period runs out (Fastify
    // says so only to requests that arrive once close() has begun). HTTP/2
    // has no such header: its connections end at the hammer.
    tracker.requests.closeConnectionsAfterNewest();
    // The grace period is a deadline, as serve()'s: Infinity never ends, and
    // one past setTimeout's 2^31−1 ms chains timers instead of firing at once.
    const [grace, cancelGrace] = withTimeout(background(), graceMs);
    const stopForce = afterFunc(grace, () => {
      tracker.forced = true;
      tracker.result.canceled = tracker.requests.count;
      // One cancel reaches every request context: they are all children.
      tracker.cancel(tracker.shutdownError());
      // Handlers that honour their context reply within a few turns; the
      // connections of the others are closed, or close() would wait forever.
      tracker.hammer = setTimeout(closeAllConnections, HAMMER_MS);
    });
    tracker.stopGrace = () => {
      stopForce();
      cancelGrace();
    };
    next();
  });
  app.addHook("onClose", (_instance: FastifyInstance, next: HookHandlerDoneFunction) => {
    tracker.stopGrace?.();
    clearTimeout(tracker.hammer);
    tracker.stopBaseWatch?.();
    tracker.cancel(tracker.shutdownError());
    tracker.resolveClosed({ ...tracker.result });
    next();
  });

  if (base.done() !== null) {
    let closing = false;
    const closeApp = (): void => {
      if (closing) return;
      closing = true;
      // A close that fails is Fastify's to report; it must not become an unhandled rejection.
      app.close().catch((err: unknown) => app.log.error(err));
    };
    // Fastify's close() before listen() runs the close hooks, yet listen()
    // binds the port afterwards all the same, and the app answers 503 for
    // good: a base that ends before the server listens (a SIGTERM during a
    // slow boot) closes the app once it does, at onListen.
    tracker.stopBaseWatch = afterFunc(base, () => {
      if (app.server.listening) closeApp();
    });
    app.addHook("onListen", (next: HookHandlerDoneFunction) => {
      if (base.err() !== null && !tracker.draining) closeApp();
      next();
    });
  }

  if (o.debugPath !== undefined) {
    const page = debugHandler(tracker);
    app.get(o.debugPath, (request, reply) => {
      // The debug page writes the raw response itself.
      reply.hijack();
      page(request.raw, reply.raw);
    });
  }
}

/**
 * closeIfIdle closes, during a drain, the HTTP/1 connection of a request
 * just released if no other request of the app is in flight on it. A reply
 * whose headers went out before close() began could not say
 * `connection: close`, and Node closes idle connections only once, when
 * close() starts: the client's keep-alive connection would otherwise hold
 * close() open until the grace period ran out.
 */
function closeIfIdle(ctx: RequestLifetime, requests: RequestSet): void {
  // Called by release() before it drops the request.
  const req = ctx.req;
  if (req === null || req.httpVersionMajor !== 1) return;
  const socket = req.socket as Socket | null;
  if (socket === null || socket.destroyed) return;
  for (let l = requests.head; l !== null; l = l.newer) {
    if (l !== ctx && l.req?.socket === socket) return;
  }
  closeConnection(socket);
}

/** What the hammer needs of the app's server: a `node:http` one, or a `node:http2` one, which has no closeAllConnections(). */
interface AnyServer {
  closeAllConnections?: () => void;
  on(event: "connection", listener: (socket: Socket) => void): unknown;
}

/**
 * connectionCloser returns what closes every connection of `server`, busy or
 * idle: `closeAllConnections()` over HTTP/1. An HTTP/2 server has none, so
 * its sockets are followed from now on (each leaves the set at its 'close')
 * and destroyed, which ends their sessions and streams: the TCP socket under
 * TLS too, and so the HTTP/1 connections of a server with `allowHTTP1`.
 */
function connectionCloser(server: AnyServer): () => void {
  const closeAll = server.closeAllConnections;
  if (typeof closeAll === "function") return () => closeAll.call(server);
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return () => {
    for (const socket of sockets) socket.destroy();
  };
}

/**
 * contextPlugin is a Fastify 5 plugin that gives every request a taproot
 * context, `request.ctx` (the counterpart of Go's `r.Context()`). The
 * context is canceled
 * - when the client disconnects before the reply is sent (cause
 *   `ClientDisconnectedError`); a POST whose body has been read keeps a live
 *   context, unlike Fastify's own `request.signal` (fastify#6725, fastify#7033);
 * - at the request's deadline: the earliest of `options.timeout`, the
 *   route's `handlerTimeout` and the caller's `connect-timeout-ms` or
 *   `grpc-timeout` header (err
 *   `DeadlineExceeded`, cause `RequestTimeoutError`);
 * - when `app.close()`'s grace period (`shutdownTimeout`) runs out, or
 *   `options.context` ends and so closes the app (cause `ShutdownError`);
 * - once the reply has been sent, which releases its timer.
 *
 * `app.close()` drains like taproot/node's `serve()`: no new connection is
 * accepted, requests in flight get the grace period, then their contexts are
 * canceled, and a second later the connections of handlers that ignored it
 * are closed (over HTTP/2, `Fastify({ http2: true })`, their sockets).
 * `app.taproot` lists the requests in flight with their routes; pass it to
 * `debugHandler`, or set `debugPath`.
 *
 * @example
 * ```ts
 * import Fastify from "fastify";
 * import { contextPlugin } from "taproot-context/fastify";
 *
 * const app = Fastify();
 * await app.register(contextPlugin, { timeout: 5_000 });
 * app.post("/orders", async (request) => {
 *   return await orders.create(request.ctx, request.body); // stops if the client leaves
 * });
 * await app.listen({ port: 8080 });
 * ```
 */
export const contextPlugin = fp(plugin, {
  fastify: "5.x",
  name: "taproot-context",
});
