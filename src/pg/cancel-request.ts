import { connect as connectTcp, isIP, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";

/** Where and how to reach the backend that a CancelRequest names. */
export interface CancelTarget {
  /** TCP host or address, or a Unix socket path when `path` is set. */
  host: string;
  port: number;
  /** A Unix-domain socket path (`<dir>/.s.PGSQL.<port>`), when the primary connection used one. */
  path: string | undefined;
  /** The primary connection's `ssl` setting: `false`, `true`, or tls.connect options. */
  ssl: boolean | ConnectionOptions;
  /** `"postgres"` (SSLRequest first) or `"direct"` (TLS from the first byte, PostgreSQL 17+). */
  sslNegotiation: string;
  /** From the backend's BackendKeyData. */
  processID: number;
  secretKey: number;
}

/** How long the server may take to read a CancelRequest and close; pgx waits for the close too (jackc/pgx#1764). */
const CANCEL_TIMEOUT_MS = 5_000;

/** The protocol's request codes (PostgreSQL protocol 3, "Message Formats"). */
const CANCEL_REQUEST_CODE = 80877102;
const SSL_REQUEST_CODE = 80877103;

/**
 * sendCancelRequest opens a new connection to the server of `target`, sends
 * a CancelRequest for its backend (over TLS when the primary connection uses
 * TLS: a CancelRequest in plaintext would leak the backend's secret key, and
 * node-postgres's own `cancel()` sends it in plaintext), and resolves once
 * the server has closed that connection, which it does after it signalled
 * the backend. It rejects when the server cannot be reached or does not
 * close within 5 s.
 */
export function sendCancelRequest(target: CancelTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const message = Buffer.alloc(16);
    message.writeInt32BE(16, 0);
    message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    message.writeInt32BE(target.processID, 8);
    message.writeInt32BE(target.secretKey, 12);

    const raw =
      target.path !== undefined
        ? connectTcp({ path: target.path })
        : connectTcp({ host: target.host, port: target.port });
    raw.setNoDelay(true);
    // The socket the request goes out on: `raw`, or the TLS socket over it.
    let wire: Socket = raw;
    let settled = false;
    let sent = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      wire.destroy();
      raw.destroy();
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `taproot: the server did not close a CancelRequest connection within ${CANCEL_TIMEOUT_MS} ms`,
          ),
        ),
      CANCEL_TIMEOUT_MS,
    );
    raw.on("error", finish);

    /** Writes the request on `socket` and waits for the server to hang up. */
    const send = (socket: Socket) => {
      wire = socket;
      socket.on("error", finish);
      socket.on("close", () => finish());
      // The server never answers a CancelRequest; reading keeps 'close' coming.
      socket.on("data", () => {});
      socket.write(message);
      sent = true;
    };
    const upgrade = () => {
      const options: ConnectionOptions = {
        ...(typeof target.ssl === "object" ? target.ssl : {}),
        socket: raw,
        host: target.host,
      };
      // As node-postgres does: no SNI for an IP address (RFC 6066 forbids it).
      if (options.servername === undefined && isIP(target.host) === 0)
        options.servername = target.host;
      if (target.sslNegotiation === "direct") options.ALPNProtocols = ["postgresql"];
      const tls = connectTls(options, () => send(tls));
      tls.on("error", finish);
    };

    raw.once("connect", () => {
      if (target.ssl === false) return send(raw);
      if (target.sslNegotiation === "direct") return upgrade();
      const request = Buffer.alloc(8);
      request.writeInt32BE(8, 0);
      request.writeInt32BE(SSL_REQUEST_CODE, 4);
      raw.once("data", (answer) => {
        if (answer[0] === 0x53 /* S */) return upgrade();
        finish(
          new Error(
            "taproot: the server refused TLS for a CancelRequest although the connection uses TLS",
          ),
        );
      });
      raw.write(request);
    });
    raw.once("close", () => {
      finish(
        sent
          ? undefined
          : new Error(
              "taproot: the server closed the CancelRequest connection before the request was sent",
            ),
      );
    });
  });
}
