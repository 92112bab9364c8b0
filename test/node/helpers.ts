/**
 * Helpers for the taproot/node tests: real servers on 127.0.0.1, port 0, and
 * plain node:http clients, so the tests exercise Node's sockets, not a mock.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

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

/** listen starts `server` on a free loopback port. */
export async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

/** close stops `server` and every connection it still has. */
export async function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** until polls `check` every few ms until it returns true, or fails after `ms`. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** deferred returns a promise and the function that resolves it. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
