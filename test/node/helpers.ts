/**
 * Helpers for the taproot/node tests: real servers on 127.0.0.1, port 0, and
 * plain node:http clients, so the tests exercise Node's sockets, not a mock.
 * The servers are started by `loopback`, and `until` and `deferred` come from
 * the helpers every test shares (test/helpers.ts).
 */
import http from "node:http";
import net from "node:net";

/** Response is what `get` read: the status, headers and the whole body. */
export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** get sends one request and reads the whole response. */
export function get(
  port: number,
  path = "/",
  options: { agent?: http.Agent; headers?: http.OutgoingHttpHeaders; method?: string } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: options.method ?? "GET",
        agent: options.agent ?? false,
        headers: options.headers,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/**
 * startAbandoned sends a request and returns a function that destroys the
 * client's socket, as a user closing the tab does.
 */
export function startAbandoned(port: number, path = "/"): { abort: () => void } {
  const req = http.request({ host: "127.0.0.1", port, path, agent: false });
  req.on("error", () => {}); // the reset is the point
  req.end();
  return { abort: () => req.destroy() };
}

/**
 * rawConnection opens a TCP connection to the server, for requests written by
 * hand: what it has received so far, the error it ended with (a reset by the
 * server is ECONNRESET), and its close.
 */
export function rawConnection(port: number): {
  socket: net.Socket;
  reply: () => string;
  error: () => Error | undefined;
  ended: Promise<unknown>;
} {
  const socket = net.connect(port, "127.0.0.1");
  let received = "";
  let failure: Error | undefined;
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => (received += chunk));
  socket.on("error", (err) => (failure = err));
  return {
    socket,
    reply: () => received,
    error: () => failure,
    ended: new Promise((resolve) => socket.once("close", resolve)),
  };
}
