/**
 * The seed's program: an HTTP server whose `/` handler does "database work"
 * that stops when the client goes away, and a worker that polls a queue every
 * second, both under one root context that SIGINT or SIGTERM cancels. On the
 * signal the worker stops at its next boundary, the server drains (requests in
 * flight get up to 10 s), and the process exits 0 with nothing left running.
 * A second Ctrl-C during the drain exits at once.
 *
 * Run it: `npm start` (PORT overrides 8080), then `curl localhost:8080/`.
 * In your own code the imports are "taproot-context" and "taproot-context/node".
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { background, cause, sleep, type Context } from "../src/index.js";
import { every, serve, signalContext, ClientDisconnectedError } from "../src/node/index.js";

const PORT = Number(process.env.PORT ?? 8080);

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

/** The queue the worker polls; each request leaves a follow-up job in it. */
const queue: string[] = [];
let served = 0;

/** doDatabaseWork stands for a 200 ms query: it rejects with ctx.err() if ctx ends first. */
async function doDatabaseWork(ctx: Context): Promise<void> {
  await sleep(ctx, 200);
}

async function handleRequest(ctx: Context, req: IncomingMessage, res: ServerResponse) {
  const started = Date.now();
  try {
    await doDatabaseWork(ctx);
  } catch (err) {
    const why = cause(ctx);
    if (why instanceof ClientDisconnectedError) {
      log(`${req.method} ${req.url}: canceled by the client after ${Date.now() - started} ms`);
    } else {
      log(`${req.method} ${req.url}: stopped: ${String(why)}`);
    }
    throw err; // serve answers 503 if the client is still there to read it
  }
  const n = ++served;
  queue.push(`receipt for request ${n}`);
  res.writeHead(200, { "content-type": "text/plain" }).end("success\n");
  log(`${req.method} ${req.url}: 200 in ${Date.now() - started} ms`);
}

/** pollQueue takes one job per poll; a real one would call the broker with ctx. */
async function pollQueue(ctx: Context): Promise<void> {
  const job = queue.shift();
  log(`poll: ${job === undefined ? "queue empty" : `processing ${job}`}`);
  if (job !== undefined) await doDatabaseWork(ctx);
}

const [root, stop] = signalContext(background());
const app = serve(handleRequest, { context: root, timeout: 5_000, shutdownTimeout: 10_000 });
try {
  const { port } = await app.listen(PORT);
  log(`listening on http://localhost:${port} (pid ${process.pid}); Ctrl-C to stop`);
} catch (err) {
  log(`cannot listen on port ${PORT}: ${(err as Error).message}`);
  stop();
  await app.shutdown();
  process.exit(1);
}
const worker = every(root, 1_000, pollQueue, {
  onError: (err) => log(`poll failed: ${String(err)}`),
});

await root.done();
stop(); // from here a second signal ends the process at once
const inflight = app.inflight().length;
log(
  `shutting down (${(cause(root) as Error).message}): draining ${inflight} request(s); signal again to force`,
);
const [result] = await Promise.all([app.closed, worker]);
log(`stopped: worker done, ${result.completed} request(s) drained, ${result.canceled} canceled`);
