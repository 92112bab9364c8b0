/**
 * serve()'s shutdown and the connections an 'upgrade' or 'connect' listener
 * takes over from HTTP (a WebSocket, a CONNECT tunnel): not idle, so left to
 * the app through the grace period, and destroyed only by the hammer.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { Duplex } from "node:stream";
import { describe, it } from "node:test";
import { background, withTimeout } from "../../src/index.js";
import { serve } from "../../src/node/index.js";
import { until } from "../helpers.js";
import { rawConnection } from "./helpers.js";

/** echo answers every chunk on a taken-over socket with "echo:" and the chunk, and keeps the socket. */
function echo(socket: Duplex, head: string, kept: Duplex[]): void {
  socket.on("error", () => {});
  socket.write(head);
  socket.on("data", (chunk: Buffer) => socket.write(`echo:${chunk.toString()}`));
  kept.push(socket);
}

/** openTakeovers opens a WebSocket-style upgrade and a CONNECT tunnel, and checks both echo. */
async function openTakeovers(port: number) {
  const ws = rawConnection(port);
  ws.socket.write(
    "GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
  );
  const tunnel = rawConnection(port);
  tunnel.socket.write("CONNECT 127.0.0.1:9 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n");
  for (const [name, c] of [
    ["websocket", ws],
    ["tunnel", tunnel],
  ] as const) {
    await until(() => /\r\n\r\n/.test(c.reply()), 5_000, `the ${name}'s answer`);
    c.socket.write("ping");
    await until(() => c.reply().endsWith("echo:ping"), 5_000, `the ${name}'s echo`);
  }
  return { ws, tunnel };
}

describe("serve's shutdown, with connections taken over by 'upgrade' or 'connect'", () => {
  it("leaves a WebSocket and a CONNECT tunnel to the app through the grace period, and ends once the app closes them", async () => {
    const server = http.createServer();
    const kept: Duplex[] = [];
    // One listener there before serve(), one added after it.
    server.on("connect", (_req, socket) =>
      echo(socket, "HTTP/1.1 200 Connection Established\r\n\r\n", kept),
    );
    const app = serve((_ctx, _req, res) => void res.end("plain\n"), { server });
    app.server.on("upgrade", (_req, socket) =>
      echo(
        socket,
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
        kept,
      ),
    );
    const { port } = await app.listen(0, "127.0.0.1");
    const { ws, tunnel } = await openTakeovers(port);
    const [grace, cancelGrace] = withTimeout(background(), 10_000);
    try {
      const t0 = Date.now();
      let settled = false;
      const stopped = app.shutdown(grace).finally(() => (settled = true));
      // Past the 500 ms a connection without a request may wait for its first one.
      await new Promise((r) => setTimeout(r, 800));
      for (const [name, c] of [
        ["websocket", ws],
        ["tunnel", tunnel],
      ] as const) {
        assert.equal(
          c.socket.destroyed,
          false,
          `the ${name} was closed ${Date.now() - t0} ms into a 10 s grace period`,
        );
        c.socket.write("still");
        await until(
          () => c.reply().endsWith("echo:still"),
          5_000,
          `the ${name}'s echo during the drain`,
        );
      }
      assert.equal(settled, false, "shutdown resolved with taken-over connections open");
      // The app closes its own connections, e.g. with a WebSocket close frame.
      for (const socket of kept) socket.end("bye");
      const result = await stopped;
      assert.ok(
        Date.now() - t0 < 5_000,
        `shutdown took ${Date.now() - t0} ms, want soon after the app closed`,
      );
      assert.deepEqual(
        result,
        { completed: 0, canceled: 0 },
        "taken-over connections are no requests",
      );
      assert.ok(
        ws.reply().endsWith("bye") && tunnel.reply().endsWith("bye"),
        "the app's last words",
      );
    } finally {
      cancelGrace();
      ws.socket.destroy();
      tunnel.socket.destroy();
    }
  });

  it("destroys a taken-over connection the app keeps, one second after the grace period", async () => {
    const app = serve((_ctx, _req, res) => void res.end("plain\n"));
    const kept: Duplex[] = [];
    app.server.on("upgrade", (_req, socket) =>
      echo(
        socket,
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
        kept,
      ),
    );
    app.server.on("connect", (_req, socket) =>
      echo(socket, "HTTP/1.1 200 Connection Established\r\n\r\n", kept),
    );
    const { port } = await app.listen(0, "127.0.0.1");
    const { ws, tunnel } = await openTakeovers(port);
    await new Promise((r) => setTimeout(r, 600)); // no longer new connections
    const [grace, cancelGrace] = withTimeout(background(), 100);
    try {
      const t0 = Date.now();
      let closedAt = 0;
      void Promise.all([ws.ended, tunnel.ended]).then(() => (closedAt = Date.now() - t0));
      await app.shutdown(grace);
      await Promise.all([ws.ended, tunnel.ended]);
      assert.ok(
        closedAt >= 900,
        `closed ${closedAt} ms into the shutdown, want after the 100 ms grace and the hammer's 1 s`,
      );
      assert.ok(closedAt < 10_000, `closed ${closedAt} ms into the shutdown`);
      assert.ok(app.context.err() !== null, "the server's context ends with the server");
    } finally {
      cancelGrace();
    }
  });

  it("adds no 'upgrade' or 'connect' behaviour while the app has no listener for them", async () => {
    const app = serve((_ctx, _req, res) => void res.end("plain\n"));
    const listener = (): void => {};
    app.server.on("upgrade", listener);
    app.server.on("connect", listener);
    app.server.off("upgrade", listener);
    app.server.off("connect", listener);
    const { port } = await app.listen(0, "127.0.0.1");
    try {
      assert.equal(app.server.listenerCount("upgrade"), 0, "'upgrade' listeners left");
      assert.equal(app.server.listenerCount("connect"), 0, "'connect' listeners left");
      // With no 'upgrade' listener Node answers an upgrade as a plain request...
      const ws = rawConnection(port);
      ws.socket.end(
        "GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
      );
      await ws.ended;
      assert.match(
        ws.reply(),
        /^HTTP\/1\.1 200 OK[\s\S]*plain\n$/,
        `upgrade reply = ${JSON.stringify(ws.reply())}`,
      );
      // ...and with no 'connect' listener it closes a CONNECT's connection.
      const tunnel = rawConnection(port);
      tunnel.socket.write("CONNECT 127.0.0.1:9 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n");
      await tunnel.ended;
      assert.equal(tunnel.reply(), "", "a CONNECT with no listener was answered");
    } finally {
      await app.shutdown();
    }
  });
});
