/**
 * The public shapes of `serve()`: its options, its handler, the server it
 * returns, and what that server reports of its requests and its shutdown.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Context } from "../index.js";
import type { RequestContextOptions } from "../fetch/request-context.js";

/**
 * InflightRequest describes a request that a `serve()` server is handling:
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
 * Handler handles one request of a `serve()` server. `ctx` is the
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
 * ServeOptions configure `serve()`.
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
 * ContextServer is a server started by `serve()`.
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
   * the rest (cause `ShutdownError`) and closes their connections. A
   * connection an 'upgrade' or 'connect' listener took over (a WebSocket, a
   * tunnel) is the app's to close: it is left open until `ctx` is done, and
   * destroyed with the connections of handlers that ignored their context.
   * It resolves when every connection is closed; calling it again joins the
   * same shutdown, and the earliest `ctx` to end cuts the grace period.
   */
  shutdown(ctx?: Context): Promise<ShutdownResult>;
}
