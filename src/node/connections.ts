/**
 * The connections of a server that serve() drives, as its drain sees them:
 * which are open, how many of serve()'s requests each has in flight, which
 * an 'upgrade' or 'connect' listener took over, and which opened a moment
 * ago and may still be about to send a first request.
 */
import type { IncomingMessage, Server } from "node:http";
import { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";

/** Per connection: how many of its requests are in flight; set at its 'connection'. */
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

/**
 * How long a connection that has sent no request yet may stay open once a
 * shutdown has begun, counted from when it opened: a first request may be on
 * its way (Go's Shutdown waits for such connections too, golang/go#22682).
 * One that has been silent longer is closed at once.
 */
const NEW_CONNECTION_GRACE_MS = 500;

/**
 * Connections follows every connection of one server from its 'connection'
 * to its 'close', for as long as the server lives.
 */
export class Connections {
  /**
   * Open connections, each with its count of requests in flight (kActive).
   * Node's own closeIdleConnections() does not count a connection that has
   * not sent a request yet as idle (fetch opens such spare connections), and
   * would leave it to hold the shutdown open.
   */
  readonly #open = new Set<Conn>();
  /**
   * Over TLS, every TCP connection, from its 'connection' to its 'close':
   * one still in its handshake is in no other list, and would hold the
   * shutdown open past its grace period (Node gives a handshake 120 s).
   * destroyAll() destroys them with the rest. Empty for a plain HTTP server.
   */
  readonly #tcp = new Set<Socket>();
  /** Closes the new connections that sent no request in their grace period; set during a drain by closeIdle(), cleared by stopWaiting(). */
  #newConnections: ReturnType<typeof setTimeout> | undefined;

  constructor(server: Server) {
    // Over TLS the request's socket is the TLSSocket of 'secureConnection'.
    const connectionEvent = server instanceof HttpsServer ? "secureConnection" : "connection";
    if (server instanceof HttpsServer) {
      server.on("connection", (socket: Socket) => {
        this.#tcp.add(socket);
        socket.once("close", () => this.#tcp.delete(socket));
      });
    }
    server.on(connectionEvent, (socket: Conn) => {
      socket[kActive] = 0;
      socket[kOpenedAt] = Date.now();
      this.#open.add(socket);
      socket.once("close", () => this.#open.delete(socket));
    });
    watchTakeovers(server);
  }

  /** requestStarted counts a request of serve()'s in flight on `socket`. */
  requestStarted(socket: Socket): void {
    const conn = socket as Conn;
    if (conn[kActive] !== undefined) {
      conn[kActive]++;
      conn[kOpenedAt] = undefined;
    }
  }

  /** requestEnded counts it out again, once it was released. */
  requestEnded(socket: Socket): void {
    const conn = socket as Conn;
    if (conn[kActive] !== undefined) conn[kActive]--;
  }

  /** closeIfIdle closes `socket` during a drain once its last request of serve()'s was released. */
  closeIfIdle(socket: Socket): void {
    if (isIdle(socket as Conn)) closeConnection(socket);
  }

  /** busy tells whether `socket` has a request of serve()'s in flight. */
  busy(socket: Socket): boolean {
    return (socket as Conn)[kActive]! > 0;
  }

  /**
   * closeIdle closes the connections with no request in flight, but for
   * those still in their first moments, which it comes back for once their
   * grace is over.
   */
  closeIdle(): void {
    const now = Date.now();
    let wait = Infinity;
    for (const socket of this.#open) {
      if (!isIdle(socket)) continue;
      const opened = socket[kOpenedAt];
      if (opened !== undefined && now - opened < NEW_CONNECTION_GRACE_MS) {
        wait = Math.min(wait, opened + NEW_CONNECTION_GRACE_MS - now);
      } else {
        closeConnection(socket);
      }
    }
    if (wait !== Infinity) {
      this.#newConnections = setTimeout(() => this.closeIdle(), Math.max(wait, 1));
    }
  }

  /** closeIdleNow closes every connection with no request in flight, new ones too: the grace period is over. */
  closeIdleNow(): void {
    this.stopWaiting();
    for (const socket of this.#open) if (isIdle(socket)) closeConnection(socket);
  }

  /** stopWaiting stops waiting for the first request of new connections. */
  stopWaiting(): void {
    clearTimeout(this.#newConnections);
  }

  /** destroyAll destroys every connection, busy or not, taken over or not (the hammer). */
  destroyAll(): void {
    for (const socket of this.#open) socket.destroy();
    for (const socket of this.#tcp) socket.destroy();
  }
}

/** isIdle tells whether a drain may close `socket` now: no request of ours on it, and not taken over. */
function isIdle(socket: Conn): boolean {
  return socket[kActive] === 0 && socket[kTakenOver] === undefined;
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
