/**
 * The seed's program on a real PostgreSQL: an HTTP server whose `/` handler
 * runs a query that stops on the server when the client goes away, and
 * enqueues a job; and a worker that polls the jobs table every second and
 * takes each job in a transaction (`FOR UPDATE SKIP LOCKED`), all under one
 * root context that SIGINT or SIGTERM cancels.
 *
 * On the signal no new request or job starts. A job in flight gets a grace
 * period (GRACE_MS, 5 s) to commit; past it, it is canceled on the server
 * and rolls back, so it stays queued for the next start: nothing lost,
 * nothing done twice. Requests in flight get up to 10 s. Then the pool
 * closes and the process exits 0. A second Ctrl-C during the drain exits at
 * once.
 *
 * Run it: `npm start` (it starts a PostgreSQL and sets DATABASE_URL; PORT
 * overrides 8080), then `curl localhost:8080/`. Environment: DATABASE_URL
 * (required), PORT, QUERY_MS (the handler's query, 200), POLL_MS (1000),
 * WORKERS (2), JOB_MS (work per job, 50), GRACE_MS (5000).
 * In your own code the imports are "taproot-context", "taproot-context/node"
 * and "taproot-context/pg".
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import pg from "pg";
import {
  afterFunc,
  background,
  cause,
  withCancelCause,
  withoutCancel,
  type Context,
} from "../src/index.js";
import { every, serve, signalContext, ClientDisconnectedError } from "../src/node/index.js";
import { query, transaction } from "../src/pg/index.js";

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

/** env reads a whole number of at least `least` from the environment (unset or empty: `fallback`), or exits saying what is wrong. */
function env(name: string, fallback: number, least: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < least) {
    log(
      `examples/server.ts: ${name} must be a whole number of at least ${least}, got ${JSON.stringify(text)}`,
    );
    process.exit(1);
  }
  return value;
}
const PORT = env("PORT", 8080, 0);
const POLL_MS = env("POLL_MS", 1_000, 1);
const WORKERS = env("WORKERS", 2, 1);
const JOB_MS = env("JOB_MS", 50, 0);
const GRACE_MS = env("GRACE_MS", 5_000, 0);
const QUERY_MS = env("QUERY_MS", 200, 0);

const url = process.env.DATABASE_URL;
if (url === undefined || url === "") {
  log(
    "examples/server.ts: DATABASE_URL is not set; run `npm start` (it starts a PostgreSQL) or set it",
  );
  process.exit(1);
}
const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on("error", (err) => log(`pool: idle connection failed: ${err.message}`));

/** The queue and the proof of work: a job is done when its completion row is committed. */
const schema = pool.query(`
  create table if not exists jobs (
    id bigserial primary key,
    payload text not null,
    created_at timestamptz not null default now(),
    done_at timestamptz
  );
  create table if not exists job_completions (
    job_id bigint not null references jobs (id),
    pid int not null,
    done_at timestamptz not null default now()
  );
  create index if not exists jobs_queued on jobs (id) where done_at is null;
`);
try {
  await schema;
} catch (err) {
  log(`examples/server.ts: cannot set up the tables on DATABASE_URL: ${(err as Error).message}`);
  await pool.end();
  process.exit(1);
}

let served = 0;

async function handleRequest(ctx: Context, req: IncomingMessage, res: ServerResponse) {
  const started = Date.now();
  let backendPid: number | undefined;
  try {
    // One transaction, on one connection: the receipt is committed only if
    // the client is still there at COMMIT, so an abandoned request enqueues
    // nothing. (Two statements on the pool would take two checkouts, and an
    // INSERT on its own commits even when its cancel comes too late.)
    await transaction(ctx, pool, async (ctx, client) => {
      // The "database work": 200 ms on the server, canceled there if the client leaves.
      const { rows } = await query(
        ctx,
        client,
        "select pg_backend_pid() as pid, pg_sleep($1), now() as at, $2::text as path",
        [QUERY_MS / 1000, req.url ?? "/"],
      );
      backendPid = (rows[0] as { pid: number }).pid;
      await query(ctx, client, "insert into jobs (payload) values ($1)", [
        `receipt for request ${++served}`,
      ]);
    });
  } catch (err) {
    const why = cause(ctx);
    if (why instanceof ClientDisconnectedError) {
      log(
        `${req.method} ${req.url}: client left after ${Date.now() - started} ms; its query was canceled on the server and nothing was enqueued`,
      );
    } else {
      log(
        `${req.method} ${req.url}: stopped: ${String(why ?? err)}${backendPid ? ` (backend ${backendPid})` : ""}`,
      );
    }
    throw err; // serve answers 503 if the client is still there to read it
  }
  res.writeHead(200, { "content-type": "text/plain" }).end("success\n");
  log(`${req.method} ${req.url}: 200 in ${Date.now() - started} ms`);
}

/**
 * graceful returns a context with ctx's values that outlives ctx by
 * GRACE_MS: a job started before the signal may still commit, and is
 * canceled (rolled back on the server) if it cannot within the grace.
 */
function graceful(ctx: Context): [Context, () => void] {
  const [jobCtx, cancel] = withCancelCause(withoutCancel(ctx));
  let timer: NodeJS.Timeout | undefined;
  const stop = afterFunc(ctx, () => {
    timer = setTimeout(() => cancel(new Error(`grace period of ${GRACE_MS} ms over`)), GRACE_MS);
  });
  return [
    jobCtx,
    () => {
      stop();
      clearTimeout(timer);
      cancel();
    },
  ];
}

/** takeJob runs one queued job in a transaction and reports whether there was one. */
async function takeJob(ctx: Context): Promise<boolean> {
  const [jobCtx, done] = graceful(ctx);
  try {
    return await transaction(jobCtx, pool, async (ctx, client) => {
      const { rows } = await query(
        ctx,
        client,
        "select id, payload from jobs where done_at is null order by id limit 1 for update skip locked",
      );
      const job = rows[0] as { id: string; payload: string } | undefined;
      if (job === undefined) return false;
      if (JOB_MS > 0) await query(ctx, client, "select pg_sleep($1)", [JOB_MS / 1000]);
      await query(ctx, client, "insert into job_completions (job_id, pid) values ($1, $2)", [
        job.id,
        process.pid,
      ]);
      await query(ctx, client, "update jobs set done_at = now() where id = $1", [job.id]);
      log(`poll: processing ${job.payload} (job ${job.id})`);
      return true;
    });
  } finally {
    done();
  }
}

/** pollQueue drains the queue, one transaction per job, until it is empty or ctx is done. */
async function pollQueue(ctx: Context): Promise<void> {
  let n = 0;
  while (ctx.err() === null && (await takeJob(ctx))) n++;
  if (n === 0) log("poll: queue empty");
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
  await pool.end();
  process.exit(1);
}
const workers = Array.from({ length: WORKERS }, () =>
  every(root, POLL_MS, pollQueue, {
    onError: (err) => log(`poll failed: ${String(err)}`),
  }),
);

await root.done();
stop(); // from here a second signal ends the process at once
const inflight = app.inflight().length;
log(
  `shutting down (${(cause(root) as Error).message}): draining ${inflight} request(s); signal again to force`,
);
const [result] = await Promise.all([app.closed, ...workers]);
await pool.end();
log(`stopped: worker done, ${result.completed} request(s) drained, ${result.canceled} canceled`);
