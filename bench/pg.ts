// npm run bench:pg: taproot/pg beside raw node-postgres and raw postgres.js,
// on a real PostgreSQL (DATABASE_URL, else an embedded one), in one run.
// It measures the built package (dist/, as users run it; `npm run bench:pg`
// builds first), not src/ through tsx, whose helpers cost per call.
// Prints a table with the bars and pass/fail; exit code 1 if a bar fails.
// BENCH_QUICK=1 shrinks every loop for a smoke run (the bars still print).
import { spawn } from "node:child_process";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import pg from "pg";
import postgres from "postgres";
import { background, withCancel, withTimeout, type Context } from "../dist/index.js";
import { contextSql, query } from "../dist/pg/index.js";
import { startPostgres } from "../scripts/postgres.js";
import { formatSummary, median, summarize } from "./paired-rounds.js";

const QUICK = process.env.BENCH_QUICK === "1";
const N = (full: number) => (QUICK ? Math.max(10, Math.round(full / 20)) : full);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Row {
  what: string;
  value: string;
  bar: string;
  pass: boolean | null; // null: shown beside, no bar
}
const rows: Row[] = [];
const record = (what: string, value: string, bar = "", pass: boolean | null = null) => {
  rows.push({ what, value, bar, pass });
  console.error(`  ${what}: ${value}${bar ? ` (bar ${bar}: ${pass ? "pass" : "FAIL"})` : ""}`);
};

const server = await startPostgres();
const admin = new pg.Pool({
  connectionString: server.url,
  max: 2,
  application_name: "bench_admin",
});
const activeCount = async (marker: string): Promise<number> => {
  const { rows: r } = await admin.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and query like $1",
    [`%${marker}%`],
  );
  return r[0]!.n;
};

// 1. Per-query CPU on SELECT 1, the contenders interleaved query by query.
//
// Each query is timed alone with process.cpuUsage() (user + system: the
// socket's system calls are part of a query's cost), and the contenders take
// turns query by query, in a fresh random order each turn, so drift on this
// shared machine (other jobs, clock scaling) hits them all alike, and each
// follows every other equally often (a fixed rotation puts the same query
// before each one every time, and what ran just before changes a query's cost). A round is BLOCK
// turns; each contender's mean over a round is divided by the raw driver's
// over the same round, and the median of those ratios is the overhead, with
// their interquartile range beside it to show the noise. (Blocks of one
// contender at a time, even 200 queries long, spread by ±12 % here.)
//
// A server-side deadline is a second statement in the same round trip
// (`SET LOCAL statement_timeout = N; …`): PostgreSQL's work for it slows the
// reply, and on one machine that shows up in the client's CPU too. So the
// raw driver also runs with the same prefix written by hand, the cheapest a
// server deadline can be with any driver, and taproot's own cost with a
// deadline is judged against that.
type Contenders = Record<string, () => Promise<unknown>>;

/** shuffle puts `xs` in a uniformly random order, in place (Fisher–Yates). */
function shuffle(xs: number[]): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
}

async function interleaved(
  contenders: Contenders,
  rounds: number,
  block: number,
): Promise<Record<string, number[]>> {
  const names = Object.keys(contenders);
  const runs = Object.values(contenders);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const warmUpRounds = QUICK ? 1 : 5; // JIT, the pool's connection
  for (let r = -warmUpRounds; r < rounds; r++) {
    const cpu = runs.map(() => 0);
    const order = runs.map((_, c) => c);
    for (let i = 0; i < block; i++) {
      shuffle(order);
      for (const c of order) {
        const before = process.cpuUsage();
        await runs[c]!();
        const d = process.cpuUsage(before);
        cpu[c]! += d.user + d.system;
      }
    }
    if (r >= 0) names.forEach((n, c) => samples[n]!.push(cpu[c]! / block));
  }
  return samples;
}

async function overhead(): Promise<void> {
  const rounds = QUICK ? 5 : 40;
  const block = QUICK ? 50 : 400;
  console.error(`per-query CPU, SELECT 1 (${rounds} rounds of ${block} queries per contender)`);
  const pool = new pg.Pool({ connectionString: server.url, max: 1 });
  const sql = postgres(server.url, { max: 1 });
  const [live, cancelLive] = withCancel(background());
  const [timed, cancelTimed] = withTimeout(background(), 3_600_000);
  const timedDeadline = timed.deadline()!.getTime();
  const byHand = () =>
    `SET LOCAL statement_timeout = ${Math.ceil(timedDeadline - Date.now())}; SELECT 1`;
  const compare = (samples: Record<string, number[]>, name: string, base: string, bar: boolean) => {
    const summary = summarize(samples[name]!.map((v, i) => v / samples[base]![i]!));
    record(
      `CPU overhead: ${name} vs ${base}`,
      formatSummary(summary),
      bar ? "<= 3 %" : "",
      bar ? summary.median <= 3 : null,
    );
  };
  const pgSamples = await interleaved(
    {
      "raw pg pool.query": () => pool.query("SELECT 1"),
      "raw pg pool.query, SET LOCAL by hand": () => pool.query(byHand()),
      "query(ctx, pool)": () => query(live, pool, "SELECT 1"),
      "query(ctx, pool), deadline": () => query(timed, pool, "SELECT 1"),
    },
    rounds,
    block,
  );
  for (const [name, xs] of Object.entries(pgSamples))
    record(`CPU per query: ${name}`, `${median(xs).toFixed(1)} µs`);
  compare(pgSamples, "query(ctx, pool)", "raw pg pool.query", true);
  compare(pgSamples, "query(ctx, pool), deadline", "raw pg pool.query, SET LOCAL by hand", true);
  compare(pgSamples, "query(ctx, pool), deadline", "raw pg pool.query", false);
  compare(pgSamples, "raw pg pool.query, SET LOCAL by hand", "raw pg pool.query", false);
  const jsSamples = await interleaved(
    {
      "raw postgres.js sql``": () => sql`SELECT 1`,
      "contextSql(ctx, sql)``": () => contextSql(live, sql)`SELECT 1`,
      "contextSql(ctx, sql)``, deadline": () => contextSql(timed, sql)`SELECT 1`,
    },
    rounds,
    block / 2,
  );
  for (const [name, xs] of Object.entries(jsSamples))
    record(`CPU per query: ${name}`, `${median(xs).toFixed(1)} µs`);
  compare(jsSamples, "contextSql(ctx, sql)``", "raw postgres.js sql``", false);
  compare(jsSamples, "contextSql(ctx, sql)``, deadline", "raw postgres.js sql``", false);
  cancelLive();
  cancelTimed();
  await pool.end();
  await sql.end();
}

// 2. Cancel latency: to the rejection, and to the backend leaving `active`.
async function cancelLatency(): Promise<void> {
  console.error("cancel latency, pg_sleep(10) canceled 50 ms in");
  const pool = new pg.Pool({ connectionString: server.url, max: 4 });
  const sql = postgres(server.url, { max: 4 });
  const samples = N(30);
  const measure = async (
    name: string,
    start: (ctx: Context, marker: string) => Promise<unknown>,
  ) => {
    const rejected: number[] = [];
    const stopped: number[] = [];
    for (let i = 0; i < samples; i++) {
      const marker = `cancel_lat_${name.replace(/\W/g, "")}_${i}`;
      const [ctx, cancel] = withCancel(background());
      const p = start(ctx, marker).then(
        () => NaN,
        () => performance.now(),
      );
      while ((await activeCount(marker)) === 0) await sleep(2);
      await sleep(20);
      const t0 = performance.now();
      cancel();
      rejected.push((await p) - t0);
      while ((await activeCount(marker)) > 0) await sleep(0);
      stopped.push(performance.now() - t0);
    }
    return { rejected: median(rejected), stopped: median(stopped) };
  };
  const a = await measure("query", (ctx, m) => query(ctx, pool, `select pg_sleep(10) as ${m}`));
  record(
    "query(ctx): cancel -> promise rejected (median)",
    `${a.rejected.toFixed(2)} ms`,
    "<= 5 ms",
    a.rejected <= 5,
  );
  record(
    "query(ctx): cancel -> backend not active (median)",
    `${a.stopped.toFixed(2)} ms`,
    "<= 20 ms",
    a.stopped <= 20,
  );
  const b = await measure("contextSql", (ctx, m) =>
    contextSql(ctx, sql).unsafe(`select pg_sleep(10) as ${m}`),
  );
  record(
    "contextSql: cancel -> promise rejected (median)",
    `${b.rejected.toFixed(2)} ms`,
    "<= 5 ms",
    b.rejected <= 5,
  );
  record(
    "contextSql: cancel -> backend not active (median)",
    `${b.stopped.toFixed(2)} ms`,
    "<= 20 ms",
    b.stopped <= 20,
  );
  // Raw pg's query_timeout: the promise rejects on time, the backend runs on.
  const timeoutPool = new pg.Pool({ connectionString: server.url, max: 1, query_timeout: 100 });
  const t0 = performance.now();
  const took = await timeoutPool.query("select pg_sleep(3) as raw_query_timeout").then(
    () => NaN,
    () => performance.now() - t0,
  );
  await sleep(500);
  const still = await activeCount("raw_query_timeout");
  record(
    "raw pg query_timeout 100 ms: rejected after / backend active 0.5 s later",
    `${took.toFixed(0)} ms / ${still === 1 ? "yes, still running" : "no"}`,
  );
  await timeoutPool.end();
  while ((await activeCount("raw_query_timeout")) > 0) await sleep(50);
  await pool.end();
  await sql.end();
}

// 3. 10,000 queries canceled at random moments under a pool of 10.
async function randomCancels(): Promise<void> {
  const total = N(10_000);
  console.error(`${total} queries canceled at random moments, pool of 10`);
  const pool = new pg.Pool({ connectionString: server.url, max: 10 });
  const sql = postgres(server.url, { max: 10 });
  const storm = async (name: string, run: (ctx: Context, i: number) => Promise<unknown>) => {
    let next = 0;
    let errors = 0;
    let canceled = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const [ctx, cancel] = withCancel(background());
        const timer = setTimeout(cancel, Math.random() * 15);
        try {
          await run(ctx, i);
        } catch (err) {
          if (err === ctx.err()) canceled++;
          else errors++;
        } finally {
          clearTimeout(timer);
          cancel();
        }
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 20 }, worker));
    const secs = (performance.now() - t0) / 1000;
    await sleep(200);
    const running = await activeCount("random_storm");
    record(
      `${name}: ${total} random cancels`,
      `${canceled} canceled, ${errors} other errors, ${secs.toFixed(1)} s`,
      "0 other errors",
      errors === 0,
    );
    record(`${name}: backends left running`, String(running), "0", running === 0);
    return secs;
  };
  await storm("query(ctx, pool)", (ctx, i) =>
    query(ctx, pool, `select pg_sleep(${(i % 5) / 1000}) as random_storm`),
  );
  const leaked = pool.totalCount - pool.idleCount;
  record(
    "query(ctx, pool): connections leaked (total - idle)",
    `${leaked} (total ${pool.totalCount})`,
    "0",
    leaked === 0 && pool.totalCount <= 10,
  );
  let failures = 0;
  await Promise.all(
    Array.from({ length: 20 }, async (_, w) => {
      for (let i = w; i < total; i += 20) {
        const r = await pool.query("select $1::int as n", [i]).catch(() => null);
        if (r?.rows[0]?.n !== i) failures++;
      }
    }),
  );
  record(
    `query(ctx, pool): next ${total} queries on that pool`,
    `${total - failures} ok`,
    "all ok",
    failures === 0,
  );
  await storm("contextSql(ctx, sql)", (ctx, i) =>
    contextSql(ctx, sql).unsafe(`select pg_sleep(${(i % 5) / 1000}) as random_storm`),
  );
  const [{ n: open } = { n: 0 }] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where application_name = 'postgres.js' and backend_type = 'client backend'`;
  record("contextSql: connections open afterwards", String(open), "<= 10", open <= 10);
  await pool.end();
  await sql.end();
}

// 4. 10,000 requests to the main job, a random third disconnecting early.
async function mainJob(): Promise<void> {
  const total = N(10_000);
  console.error(`${total} requests to examples/server.ts, a third disconnecting early`);
  const example = fileURLToPath(new URL("../examples/server.ts", import.meta.url));
  // A database of its own: the jobs it enqueues must not wait in anyone's `postgres` database.
  const dbName = `bench_main_job_${process.pid}`;
  await admin.query(`create database ${dbName}`);
  const dbUrl = new URL(server.url);
  dbUrl.pathname = `/${dbName}`;
  const child = spawn(process.execPath, ["--import", "tsx", example], {
    env: {
      ...process.env,
      DATABASE_URL: dbUrl.toString(),
      PORT: "0",
      QUERY_MS: "20",
      POLL_MS: "60000",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 60_000;
  while (!/listening on http:\/\/localhost:(\d+)/.test(out) && Date.now() < deadline)
    await sleep(20);
  const port = Number(/listening on http:\/\/localhost:(\d+)/.exec(out)?.[1]);
  let next = 0;
  let ok = 0;
  let errors = 0;
  let left = 0;
  const one = (early: boolean) =>
    new Promise<void>((resolve) => {
      const req = request({ port, path: "/", agent: false }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) ok++;
          else errors++;
          resolve();
        });
      });
      req.on("error", () => {
        if (early) left++;
        else errors++;
        resolve();
      });
      req.end();
      if (early) setTimeout(() => req.destroy(), Math.random() * 20);
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < total) {
        next++;
        await one(Math.random() < 1 / 3);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await sleep(300);
  const running = await activeCount("pg_sleep($1)");
  child.kill("SIGTERM");
  const code = await exited;
  const logged = (out.match(/poll failed|stopped: Error|uncaught/gi) ?? []).length;
  record(
    `main job: ${total} requests`,
    `${ok} ok, ${left} left early, ${errors} errors, ${logged} error lines, ${secs.toFixed(1)} s`,
    "0 errors",
    errors === 0 && logged === 0,
  );
  record("main job: backends running afterwards", String(running), "0", running === 0);
  record("main job: exit code after SIGTERM", String(code), "0", code === 0);
  await admin.query(`drop database ${dbName} with (force)`);
}

// BENCH_ONLY=overhead (or cancelLatency, randomCancels, mainJob; comma-separated) runs just those parts.
const parts = { overhead, cancelLatency, randomCancels, mainJob };
const only = process.env.BENCH_ONLY?.split(",");
try {
  for (const [name, part] of Object.entries(parts))
    if (only === undefined || only.includes(name)) await part();
} finally {
  await admin.end();
  await server.stop();
}

const width = Math.max(...rows.map((r) => r.what.length));
const vwidth = Math.max(...rows.map((r) => r.value.length));
console.log(
  `\ntaproot/pg benchmark, ${new Date().toISOString()}${QUICK ? " (BENCH_QUICK)" : ""}\n`,
);
console.log(`| ${"measure".padEnd(width)} | ${"result".padEnd(vwidth)} | bar | |`);
console.log(`| ${"-".repeat(width)} | ${"-".repeat(vwidth)} | --- | --- |`);
for (const r of rows) {
  const verdict = r.pass === null ? "" : r.pass ? "pass" : "**FAIL**";
  console.log(`| ${r.what.padEnd(width)} | ${r.value.padEnd(vwidth)} | ${r.bar} | ${verdict} |`);
}
process.exitCode = rows.some((r) => r.pass === false) ? 1 : 0;
