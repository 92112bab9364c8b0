import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import postgres from "postgres";
import {
  background,
  Canceled,
  cause,
  DeadlineExceeded,
  withCancel,
  withCancelCause,
  withTimeout,
  type Context,
} from "../../src/index.js";
import { begin } from "../../src/pg/postgres-js-begin.js";
import { contextSql } from "../../src/pg/postgres-js.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { nearDeadlineRuns } from "./near-deadline.js";

/** Thirty days: farther than statement_timeout's largest value, 2^31 - 1 ms (about 24.8 days). */
const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

let db: TestDatabase;
let admin: postgres.Sql;

before(async () => {
  db = await createTestDatabase();
  admin = postgres(db.url, {
    max: 2,
    onnotice: () => {},
    connection: { application_name: "admin" },
  });
  await admin`create table items (id serial primary key, name text not null)`;
  await admin`create table tiny (id int primary key, v int)`;
});
after(async () => {
  await admin.end();
  await db.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** activeLike counts backends other than admin's running a statement whose text contains `marker`. */
async function activeLike(marker: string): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where state = 'active' and pid <> pg_backend_pid() and query like ${"%" + marker + "%"}`;
  return row!.n;
}

/** waitFor polls `check` until it is true or `ms` passed; returns its last answer. */
async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(20);
  }
}

/** inTransaction lists the sessions named `application` left idle in a transaction (aborted or not). */
async function inTransaction(application: string): Promise<string[]> {
  const rows = await admin<{ state: string }[]>`
    select state from pg_stat_activity
    where application_name = ${application} and state like 'idle in transaction%'`;
  return rows.map((row) => row.state);
}

/** sessionsOf counts the sessions named `application` open on the server. */
async function sessionsOf(application: string): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where application_name = ${application}`;
  return row!.n;
}

/** settledWithin resolves with how `promise` settled, or "pending" after `ms`. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise((resolve) => (timer = setTimeout(resolve, ms, "pending")));
  try {
    return await Promise.race([
      promise.then(
        () => "resolved",
        (err: unknown) => err,
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** connections counts the sessions open on the test database, admin's excluded. */
async function connections(): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
      and application_name <> 'admin'`;
  return row!.n;
}

/** rejectsAsOpeningATransaction checks that `statement` was refused as contextSql refuses a BEGIN, pointing at begin(). */
async function rejectsAsOpeningATransaction(
  statement: Promise<unknown>,
  what: string,
): Promise<void> {
  await assert.rejects(statement, (e) => {
    assert.ok(e instanceof TypeError, `${what}: got ${String(e)}, want a TypeError`);
    assert.match(e.message, /^contextSql\(ctx, sql\): .*begin\(ctx, sql, fn\)/);
    return true;
  });
}

/** The methods of postgres.js's pending queries, which taproot's statements refuse. */
const QUERY_METHODS = ["values", "raw", "cursor", "forEach", "describe", "simple", "execute"];

/**
 * withMisuseHarness runs `body` on a pool of one connection that records
 * every text it sends, with a context of each kind (one that never ends, a
 * cancelable one, one with a deadline: `timed`), then checks that no
 * rejection went unhandled and that nothing naming `no_such_table` was sent.
 */
async function withMisuseHarness(
  body: (
    sql: postgres.Sql,
    contexts: readonly (readonly [string, Context])[],
    timed: Context,
  ) => Promise<void>,
): Promise<void> {
  const sent: string[] = [];
  const sql = postgres(db.url, { max: 1, debug: (_c, text) => sent.push(text) });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const [canceled, cancel] = withCancel(background());
  const [timed, cancelTimed] = withTimeout(background(), 10_000);
  try {
    const contexts = [
      ["background", background()],
      ["withCancel", canceled],
      ["withTimeout", timed],
    ] as const;
    await body(sql, contexts, timed);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, [], "unhandled rejections");
    assert.deepEqual(
      sent.filter((text) => text.includes("no_such_table")),
      [],
      "statements sent after a query method was called",
    );
  } finally {
    process.off("unhandledRejection", onUnhandled);
    cancel();
    cancelTimed();
    await sql.end();
  }
}

describe("contextSql(ctx, sql)", () => {
  it("runs tagged statements, fragments and unsafe text with values", async () => {
    const sql = postgres(db.url, { max: 2 });
    try {
      const [ctx, cancel] = withCancel(background());
      const q = contextSql(ctx, sql);
      const [row] = await q<{ n: number; s: string }[]>`select ${41}::int + 1 as n, ${"x"} as s`;
      assert.deepEqual({ ...row }, { n: 42, s: "x" });
      const where = sql`where id = ${1}`;
      const rows = await q`select 1 as one from (select 1 as id) t ${where}`;
      assert.equal(rows.length, 1, "a fragment built with sql works inside");
      const [u] = await q.unsafe<{ v: string }[]>("select $1::text as v", ["y"]);
      assert.equal(u!.v, "y");
      cancel();
    } finally {
      await sql.end();
    }
  });

  it("rejects with ctx.err() at once and sends nothing when ctx is already done", async () => {
    const sent: string[] = [];
    const sql = postgres(db.url, { max: 1, debug: (_c, text) => sent.push(text) });
    try {
      const [ctx, cancel] = withCancel(background());
      cancel();
      await assert.rejects(contextSql(ctx, sql)`select 1`, (err) => err === Canceled);
      const [late] = withTimeout(background(), 0);
      await assert.rejects(
        contextSql(late, sql).unsafe("select 1"),
        (err) => err === DeadlineExceeded,
      );
      assert.deepEqual(sent, [], "statements sent");
    } finally {
      await sql.end();
    }
  });

  it("cancels the running statement on the server and rejects with ctx.err()", async () => {
    const sql = postgres(db.url, { max: 2 });
    try {
      const [ctx, cancel] = withCancelCause(background());
      const why = new Error("client went away");
      const running = contextSql(ctx, sql)`select pg_sleep(30) as cancel_me_1`;
      assert.ok(
        await waitFor(async () => (await activeLike("cancel_me_1")) === 1, 10_000),
        "query never ran",
      );
      const t0 = Date.now();
      cancel(why);
      await assert.rejects(running, (err) => err === Canceled);
      const took = Date.now() - t0;
      assert.ok(took < 5_000, `rejected ${took} ms after cancel, want well under pg_sleep(30)`);
      assert.equal(cause(ctx), why);
      assert.equal(await activeLike("cancel_me_1"), 0, "backends still running the canceled query");
      // The connection was kept (57014 seen) and serves the next statement.
      const [row] = await sql`select 7 as n`;
      assert.equal(row!.n, 7);
    } finally {
      await sql.end();
    }
  });

  it("ends the wait for a connection when ctx ends, and gives back the one that arrives later", async () => {
    const sql = postgres(db.url, { max: 1 });
    try {
      // A first statement, so that the wait below is sql.reserve()'s, not taproot's first look at sql.
      await contextSql(withTimeout(background(), 10_000)[0], sql)`select 1`;
      const held = await sql.reserve();
      const [ctx, cancel] = withCancel(background());
      const waiting = contextSql(ctx, sql)`select 1`;
      await sleep(50);
      cancel();
      await assert.rejects(waiting, (err) => err === Canceled);
      held.release(); // the abandoned reserve gets it now, and must hand it back
      const [ctx2, cancel2] = withTimeout(background(), 10_000);
      const [row] = await contextSql(ctx2, sql)`select 2 as n`;
      assert.equal(row!.n, 2, "the pool's only connection came back");
      cancel2();
    } finally {
      await sql.end();
    }
  });

  it("bounds the statement on the server by ctx's deadline and resets statement_timeout after", async () => {
    const sql = postgres(db.url, { max: 1 });
    try {
      const [ctx, cancel] = withTimeout(background(), 300);
      const q = contextSql(ctx, sql);
      const [shown] = await q<{ statement_timeout: string }[]>`show statement_timeout`;
      assert.match(shown!.statement_timeout, /^\d+ms$/, "statement_timeout during the statement");
      await assert.rejects(q`select pg_sleep(30)`, (err) => err === DeadlineExceeded);
      cancel();
      const [after] = await sql<{ statement_timeout: string }[]>`show statement_timeout`;
      assert.equal(after!.statement_timeout, "0", "statement_timeout left on the connection");
    } finally {
      await sql.end();
    }
  });

  it("never lifts the statement_timeout the connection was configured with, in contextSql and begin", async () => {
    for (const configured of [400, "400ms", "0.4s"] as const) {
      // postgres.js types the option as a number, but sends any value as it is, as
      // a connection string's `?statement_timeout=…` (a string) is sent.
      const sql = postgres(db.url, {
        max: 1,
        connection: { statement_timeout: configured as number },
      });
      try {
        const [ctx, cancel] = withTimeout(background(), 30_000);
        const q = contextSql(ctx, sql);
        const [shown] = await q<{ statement_timeout: string }[]>`show statement_timeout`;
        assert.equal(shown!.statement_timeout, "400ms", `${configured}: under a 30 s deadline`);
        const t0 = performance.now();
        await assert.rejects(
          q`select pg_sleep(3)`,
          (err: { code?: string }) => err.code === "57014" && err !== DeadlineExceeded,
          `${configured}: the server's own statement timeout, not the deadline`,
        );
        const ms = performance.now() - t0;
        assert.ok(ms >= 350 && ms < 2_500, `rejected after ${ms.toFixed(0)} ms, want ~400`);
        const inTransaction = await begin(ctx, sql, async (_txCtx, tx) => {
          const [row] = await tx<{ statement_timeout: string }[]>`show statement_timeout`;
          return row!.statement_timeout;
        });
        assert.equal(inTransaction, "400ms", `${configured}: in begin under a 30 s deadline`);
        assert.equal(ctx.err(), null, "the deadline has not passed");
        cancel();
        const [after] = await sql<{ statement_timeout: string }[]>`show statement_timeout`;
        assert.equal(after!.statement_timeout, "400ms", "the configured value stays");
      } finally {
        await sql.end();
      }
    }
  });

  it("stops the statement at its deadline even when the process is killed with SIGKILL", async () => {
    const code = `
      import postgres from "postgres";
      import { background, withTimeout } from "./src/index.ts";
      import { contextSql } from "./src/pg/postgres-js.ts";
      const sql = postgres(process.env.URL);
      const [ctx] = withTimeout(background(), 1500);
      contextSql(ctx, sql)\`select pg_sleep(60) as killed_mid_query\`.catch(() => {});
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: new URL("../..", import.meta.url),
      env: { ...process.env, URL: db.url },
      stdio: "ignore",
    });
    try {
      assert.ok(
        await waitFor(async () => (await activeLike("killed_mid_query")) === 1, 15_000),
        "query never ran",
      );
      child.kill("SIGKILL");
      // Not the client's timer (the process is gone): the server's statement_timeout.
      assert.ok(
        await waitFor(async () => (await activeLike("killed_mid_query")) === 0, 15_000),
        "the backend still runs pg_sleep(60) 15 s after its 1.5 s deadline",
      );
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("never cancels the next statement: cancels at the moment results arrive, thousands of times", async (t) => {
    // One connection, so every "next statement" runs where a late cancel would land.
    const sql = postgres(db.url, { max: 1 });
    const budget = Date.now() + 40_000;
    let rounds = 0;
    let canceled = 0;
    try {
      while (rounds < 3_000 && Date.now() < budget) {
        rounds++;
        const [ctx, cancel] = withCancel(background());
        const mine = contextSql(ctx, sql)`select 1`;
        // Cancel after 0..3 turns of the event loop: before, during and just after the result.
        const turns = rounds % 4;
        const canceler = (async () => {
          for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
          cancel();
        })();
        const next = sql`select 2 as n`; // someone else's statement, at once, same pool
        const [a, b] = await Promise.allSettled([mine, next]);
        await canceler;
        if (a.status === "rejected") {
          assert.equal(
            a.reason,
            Canceled,
            `round ${rounds}: own statement failed with ${String(a.reason)}`,
          );
          canceled++;
        }
        assert.equal(
          b.status,
          "fulfilled",
          `round ${rounds}: the next statement failed: ${String((b as PromiseRejectedResult).reason)}`,
        );
        // And the one after that, once our connection is back.
        const [row] = await sql`select 3 as n`;
        assert.equal(row!.n, 3);
      }
    } finally {
      await sql.end();
    }
    t.diagnostic(`${rounds} rounds, ${canceled} of our own statements canceled, 0 others`);
    assert.ok(rounds >= 200, `only ${rounds} rounds in the time budget`);
    assert.ok(
      canceled > 0,
      `no round canceled its own statement in ${rounds}; the test provoked nothing`,
    );
  });

  it("leaves no backend running and no connection leaked after many random cancels", async () => {
    const sql = postgres(db.url, { max: 4, connection: { application_name: "random_cancels" } });
    try {
      const jobs = Array.from({ length: 200 }, async (_, i) => {
        const [ctx, cancel] = withCancel(background());
        const timer = setTimeout(cancel, Math.random() * 30);
        try {
          await contextSql(ctx, sql)`select pg_sleep(${(i % 5) * 0.01}) as random_cancel`;
        } catch (err) {
          assert.equal(err, Canceled);
        } finally {
          clearTimeout(timer);
          cancel();
        }
      });
      await Promise.all(jobs);
      assert.ok(
        await waitFor(async () => (await activeLike("random_cancel")) === 0, 5_000),
        "backends still running after every promise settled",
      );
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => sql`select ${i}::int as n`),
      );
      assert.equal(results.length, 50);
      assert.ok((await connections()) <= 4, `connections ${await connections()}, want <= max 4`);
    } finally {
      await sql.end();
    }
  });

  it("caps a deadline beyond statement_timeout's range at its largest value and keeps the connection", async () => {
    const sql = postgres(db.url, { max: 1 });
    try {
      const [ctx, cancel] = withTimeout(background(), THIRTY_DAYS_MS);
      const q = contextSql(ctx, sql);
      const pids = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const [row] = await q<{ pid: number; st: string }[]>`
          select pg_backend_pid() as pid, current_setting('statement_timeout') as st`;
        assert.equal(row!.st, "2147483647ms", "statement_timeout under a 30-day deadline");
        pids.add(row!.pid);
      }
      assert.equal(
        pids.size,
        1,
        `backends over 3 statements = ${pids.size}, want 1 (none retired)`,
      );
      cancel();
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it("rejects on an ended sql with postgres.js's CONNECTION_ENDED, as sql does, and opens nothing", async () => {
    for (const firstUse of ["after end", "before end"]) {
      const application = `ended_${firstUse.replace(" ", "_")}`;
      const sql = postgres(db.url, { max: 1, connection: { application_name: application } });
      const [ctx, cancel] = withCancel(background());
      if (firstUse === "before end") await contextSql(ctx, sql)`select 1`;
      await sql`select 1`;
      await sql.end();
      const got = await settledWithin(contextSql(ctx, sql)`select 1`, 5_000);
      assert.equal(
        (got as { code?: unknown }).code,
        "CONNECTION_ENDED",
        `${firstUse}: contextSql settled with ${String(got)}, want CONNECTION_ENDED`,
      );
      const gotBegin = await settledWithin(
        begin(ctx, sql, async (_ctx, tx) => tx`select 1`),
        5_000,
      );
      assert.equal(
        (gotBegin as { code?: unknown }).code,
        "CONNECTION_ENDED",
        `${firstUse}: begin settled with ${String(gotBegin)}, want CONNECTION_ENDED`,
      );
      cancel();
      assert.ok(
        await waitFor(async () => (await sessionsOf(application)) === 0, 5_000),
        `${firstUse}: sessions of the ended sql = ${await sessionsOf(application)}, want 0`,
      );
    }
  });

  it("rejects the first statement with CONNECTION_ENDED when sql.end() follows at once, and opens nothing", async () => {
    for (const kind of ["contextSql", "begin"] as const) {
      const application = `end_first_${kind}`;
      const sql = postgres(db.url, { max: 1, connection: { application_name: application } });
      await sql`select 1`;
      const [ctx, cancel] = withTimeout(background(), 60_000);
      const first =
        kind === "contextSql"
          ? contextSql(ctx, sql)`select 1`
          : begin(ctx, sql, async (_ctx, tx) => tx`select 1`);
      const ended = await settledWithin(sql.end(), 5_000);
      const got = await settledWithin(first, 5_000);
      cancel();
      assert.equal(ended, "resolved", `${kind}: sql.end() settled with ${String(ended)}`);
      assert.equal(
        (got as { code?: unknown }).code,
        "CONNECTION_ENDED",
        `${kind}: the statement settled with ${String(got)}, want CONNECTION_ENDED`,
      );
      assert.ok(
        await waitFor(async () => (await sessionsOf(application)) === 0, 5_000),
        `${kind}: sessions of the ended sql = ${await sessionsOf(application)}, want 0`,
      );
    }
  });

  it("lets sql.end() finish once the statements running under contexts have (contextSql and begin)", async () => {
    for (const kind of ["contextSql", "begin"] as const) {
      const sql = postgres(db.url, { max: 2, onnotice: () => {} });
      await sql`select 1`;
      const [ctx, cancel] = withTimeout(background(), 60_000);
      const running =
        kind === "contextSql"
          ? contextSql(ctx, sql)`select pg_sleep(0.3)`
          : begin(ctx, sql, async (_ctx, tx) => tx`select pg_sleep(0.3)`);
      await sleep(100);
      // postgres.js 3.4 alone never finishes end() for a reserved connection released after it.
      const ended = await settledWithin(sql.end(), 5_000);
      cancel();
      assert.equal(ended, "resolved", `${kind}: sql.end() settled with ${String(ended)}`);
      assert.ok(Array.isArray(await running), `${kind}: the running statement's rows`);
    }
  });

  it("rejects a statement postgres.js cannot build with its own error, under a deadline too, and keeps the connection", async () => {
    for (const kind of ["contextSql", "contextSql with deadline", "begin with deadline"] as const) {
      const application = `unbuilt_${kind.replaceAll(" ", "_")}`;
      const sql = postgres(db.url, {
        max: 1,
        onnotice: () => {},
        connection: { application_name: application },
      });
      const [ctx, cancel] =
        kind === "contextSql" ? withCancel(background()) : withTimeout(background(), 60_000);
      // An undefined parameter, as from a JavaScript caller: postgres.js refuses it unsent.
      const missing = undefined as unknown as number;
      const want = await sql`select ${missing} as x`.catch((err: unknown) => err);
      // Twice in a row: the second must not be pipelined behind what the first left.
      for (let attempt = 0; attempt < 2; attempt++) {
        const bad =
          kind === "begin with deadline"
            ? begin(ctx, sql, async (_ctx, tx) => tx`select ${missing} as x`)
            : contextSql(ctx, sql)`select ${missing} as x`;
        const got = await settledWithin(bad, 5_000);
        assert.equal(
          (got as { code?: unknown }).code,
          (want as { code?: unknown }).code,
          `${kind} #${attempt}: settled with ${String(got)}, want ${String(want)}`,
        );
      }
      const next = await settledWithin(contextSql(ctx, sql)`select 1 as one`, 5_000);
      assert.equal(next, "resolved", `${kind}: the next statement settled with ${String(next)}`);
      assert.deepEqual(await inTransaction(application), [], `${kind}: sessions in a transaction`);
      cancel();
      const ended = await settledWithin(sql.end(), 5_000);
      assert.equal(ended, "resolved", `${kind}: sql.end() settled with ${String(ended)}`);
    }
  });

  it("refuses BEGIN and START TRANSACTION, as sql does, and never gives a connection back in a transaction", async () => {
    const application = "refuses_begin";
    const sql = postgres(db.url, {
      max: 2,
      onnotice: () => {},
      connection: { application_name: application },
    });
    const [canceled, cancel] = withCancel(background());
    const [timed, cancelTimed] = withTimeout(background(), 10_000);
    try {
      for (const [name, ctx] of [
        ["withCancel", canceled],
        ["withTimeout", timed],
      ] as const) {
        const db = contextSql(ctx, sql);
        for (const [form, run] of [
          ["db`begin`", () => db`begin`],
          ["unsafe begin", () => db.unsafe("begin")],
          ["unsafe start transaction", () => db.unsafe("/* x */ START TRANSACTION read only")],
          ["unsafe select; begin", () => db.unsafe("select 1; begin")],
        ] as const) {
          await rejectsAsOpeningATransaction(run(), `${name}, ${form}`);
        }
        // Not a statement that opens one: a BEGIN in a string, a function body.
        const [row] = await db<{ t: string }[]>`select 'begin' as t`;
        assert.equal(row!.t, "begin");
      }
      assert.deepEqual(await inTransaction(application), [], "sessions idle in a transaction");
      // A later caller's write is committed.
      await admin`create table if not exists refuses_begin (v int)`;
      for (let i = 0; i < 4; i++) await sql`insert into refuses_begin values (${i})`;
      const [count] = await admin<{ n: number }[]>`select count(*)::int as n from refuses_begin`;
      assert.equal(count!.n, 4, "rows other sessions see");
    } finally {
      cancel();
      cancelTimed();
      await sql.end();
    }
  });

  it("refuses a BEGIN that fragments put in the text (sql.unsafe, nested sql``, arrays of them), and sends none of it", async () => {
    const application = "refuses_fragment_begin";
    const sent: string[] = [];
    const sql = postgres(db.url, {
      max: 2,
      onnotice: () => {},
      connection: { application_name: application },
      debug: (_c, text) => sent.push(text),
    });
    const [canceled, cancel] = withCancel(background());
    const [timed, cancelTimed] = withTimeout(background(), 10_000);
    try {
      for (const [name, ctx] of [
        ["withCancel", canceled],
        ["withTimeout", timed],
      ] as const) {
        const db = contextSql(ctx, sql);
        for (const [form, run] of [
          ["db`${sql.unsafe('begin')}`", () => db`${sql.unsafe("begin")}`],
          [
            "a comment, then sql.unsafe('BEGIN')",
            () => db`/* x */ ${sql.unsafe("BEGIN")} isolation level serializable`,
          ],
          ["db`${sql`begin`}`", () => db`${sql`begin`}`],
          [
            "start transaction two fragments deep",
            () => db`${sql`${sql.unsafe("start")} transaction`} read only`,
          ],
          ["an array of fragments", () => db`${[sql.unsafe("begin")]}`],
        ] as const) {
          await rejectsAsOpeningATransaction(run(), `${name}, ${form}`);
        }
        // Fragments that open nothing run as postgres.js builds them.
        const [row] = await db`select ${sql.unsafe("'begin'")} as t, ${sql`${1}::int`} as n,
          2 as ${sql("begin")}, ${sql({ s: "x" })}`;
        assert.deepEqual({ ...row }, { t: "begin", n: 1, begin: 2, s: "x" }, `${name}: the row`);
      }
      assert.deepEqual(
        sent.filter((text) => /^\s*(?:\/\*.*?\*\/\s*)?(?:begin|start)\b/i.test(text)),
        [],
        "statements sent that open a transaction",
      );
      assert.deepEqual(await inTransaction(application), [], "sessions idle in a transaction");
    } finally {
      cancel();
      cancelTimed();
      await sql.end();
    }
  });

  it("a postgres.js query method on a statement throws a TypeError naming contextSql, and nothing is sent", async () => {
    await withMisuseHarness(async (sql, contexts, timed) => {
      for (const [name, ctx] of contexts) {
        const db = contextSql(ctx, sql);
        for (const method of QUERY_METHODS) {
          for (const [form, make] of [
            ["tag", () => db`select * from no_such_table_${sql.unsafe(method)}`],
            ["unsafe", () => db.unsafe(`select * from no_such_table_${method}`)],
          ] as const) {
            const statement = make() as unknown as Record<string, () => unknown> & Promise<unknown>;
            assert.throws(
              () => statement[method]!(),
              (e) =>
                e instanceof TypeError &&
                /^contextSql\(ctx, sql\): \.\w+\(\).*await it/.test(e.message),
              `${name}, ${form}: .${method}()`,
            );
            await assert.rejects(
              statement,
              TypeError,
              `${name}, ${form}: awaited after .${method}()`,
            );
          }
        }
      }
      const [row] = await contextSql(timed, sql)<{ one: number }[]>`select 1 as one`;
      assert.equal(row!.one, 1, "the next statement");
    });
  });

  it("after a statement that ended near its deadline, clears a statement timeout the server may carry over", async () => {
    // PostgreSQL can carry a statement_timeout that fired at a statement's very
    // end over to the connection's next command, another caller's; taproot
    // sends an empty query of its own first when the deadline is that near.
    const sent: string[] = [];
    const sql = postgres(db.url, { max: 1, debug: (_c, text) => sent.push(text) });
    try {
      const [far, cancelFar] = withTimeout(background(), 60_000);
      await contextSql(far, sql)`select 1 as far`;
      cancelFar();
      await sql`select 2 as next_caller`;
      const farReset = sent.indexOf("reset statement_timeout");
      assert.deepEqual(
        sent.slice(farReset + 1),
        ["select 2 as next_caller"],
        `far from the deadline, sent ${JSON.stringify(sent)}`,
      );
      const near = await nearDeadlineRuns(sent, async (ctx) => {
        await contextSql(ctx, sql)`select 1 as near`;
        await sql`select 2 as next_caller`;
      });
      const reset = near.indexOf("reset statement_timeout");
      const next = near.findIndex((text) => text.includes("next_caller"));
      assert.ok(reset >= 0 && next > reset, `sent ${JSON.stringify(near)}`);
      assert.ok(
        near.slice(reset + 1, next).includes(""),
        `no empty query between the RESET and the next caller: ${JSON.stringify(near)}`,
      );
    } finally {
      await sql.end();
    }
  });

  it("throws a TypeError naming the function and the fix for bad input", async () => {
    const sql = postgres(db.url, { max: 1 });
    try {
      assert.throws(
        () => contextSql(undefined as never, sql),
        /contextSql\(ctx, sql\): ctx is undefined; pass background\(\)/,
      );
      assert.throws(
        () => contextSql(background(), {} as never),
        /contextSql\(ctx, sql\): sql must be postgres\.js's sql/,
      );
      const q = contextSql(background(), sql);
      await assert.rejects(
        (q as unknown as (s: string) => Promise<unknown>)("select 1"),
        /tagged template/,
      );
      await assert.rejects(
        q.unsafe(5 as never),
        /unsafe\(text, values\): text must be a string of SQL, got 5 \(number\)/,
      );
      await assert.rejects(q.unsafe("select $1", "x" as never), /values must be an array/);
      assert.throws(
        () => begin(background(), sql, 5 as never),
        /begin\(ctx, sql, fn\): fn must be a function/,
      );
    } finally {
      await sql.end();
    }
  });
});

describe("begin(ctx, sql, fn)", () => {
  it("commits when fn resolves and rolls back when it throws", async () => {
    const sql = postgres(db.url, { max: 2 });
    try {
      const [ctx, cancel] = withCancel(background());
      const id = await begin(ctx, sql, async (_ctx, tx) => {
        const [row] = await tx<
          { id: number }[]
        >`insert into items (name) values ('kept') returning id`;
        return row!.id;
      });
      assert.equal((await sql`select 1 from items where id = ${id}`).length, 1, "committed row");
      const boom = new Error("boom");
      await assert.rejects(
        begin(ctx, sql, async (_ctx, tx) => {
          await tx`insert into items (name) values ('dropped')`;
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(
        (await sql`select 1 from items where name = 'dropped'`).length,
        0,
        "rolled-back row",
      );
      cancel();
    } finally {
      await sql.end();
    }
  });

  it("cancels the running statement and rolls back when ctx ends; no session idle in transaction", async () => {
    const sql = postgres(db.url, { max: 2, connection: { application_name: "tx_cancel" } });
    try {
      const [ctx, cancel] = withCancel(background());
      const tx = begin(ctx, sql, async (_ctx, tx) => {
        await tx`insert into items (name) values ('canceled')`;
        await tx`select pg_sleep(30) as tx_cancel_me`;
        return "finished";
      });
      assert.ok(
        await waitFor(async () => (await activeLike("tx_cancel_me")) === 1, 10_000),
        "query never ran",
      );
      cancel();
      await assert.rejects(tx, (err) => err === Canceled);
      assert.equal(
        (await sql`select 1 from items where name = 'canceled'`).length,
        0,
        "row of a canceled transaction",
      );
      const idle =
        await admin`select 1 from pg_stat_activity where application_name = 'tx_cancel' and state like 'idle in transaction%'`;
      assert.equal(idle.length, 0, "sessions idle in transaction");
      assert.equal(await activeLike("tx_cancel_me"), 0);
    } finally {
      await sql.end();
    }
  });

  it("rolls back when ctx ends between statements, and refuses statements after the end", async () => {
    const sql = postgres(db.url, { max: 2 });
    try {
      const [ctx, cancel] = withCancel(background());
      let tx2: ((s: TemplateStringsArray) => Promise<unknown>) | undefined;
      const t = begin(ctx, sql, async (_ctx, tx) => {
        tx2 = tx;
        await tx`insert into items (name) values ('between')`;
        await sleep(10_000); // not a statement: the race with ctx ends the transaction
        return "finished";
      });
      await sleep(200);
      cancel();
      await assert.rejects(t, (err) => err === Canceled);
      assert.equal((await sql`select 1 from items where name = 'between'`).length, 0);
      await assert.rejects(tx2!`select 1`, /after the transaction ended/);
    } finally {
      await sql.end();
    }
  });

  it("sets the deadline as SET LOCAL statement_timeout and runs nothing under a done ctx", async () => {
    const sent: string[] = [];
    const sql = postgres(db.url, { max: 1, debug: (_c, text) => sent.push(text) });
    try {
      const [ctx, cancel] = withTimeout(background(), 5_000);
      const shown = await begin(ctx, sql, async (_ctx, tx) => {
        const [row] = await tx<{ statement_timeout: string }[]>`show statement_timeout`;
        return row!.statement_timeout;
      });
      assert.match(shown, /^\d+(ms|s)$/);
      const [row] = await sql<{ statement_timeout: string }[]>`show statement_timeout`;
      assert.equal(row!.statement_timeout, "0", "statement_timeout after the transaction");
      cancel();
      sent.length = 0;
      let ran = false;
      await assert.rejects(
        begin(ctx, sql, async () => {
          ran = true;
        }),
        (err) => err === Canceled,
      );
      assert.equal(ran, false);
      assert.deepEqual(sent, []);
    } finally {
      await sql.end();
    }
  });

  it("caps a deadline beyond statement_timeout's range, and leaves the connection out of any transaction", async () => {
    const sql = postgres(db.url, { max: 1, connection: { application_name: "tx_far" } });
    try {
      const [ctx, cancel] = withTimeout(background(), THIRTY_DAYS_MS);
      const shown = await begin(ctx, sql, async (_ctx, tx) => {
        const [row] = await tx<{ st: string }[]>`select current_setting('statement_timeout') as st`;
        return row!.st;
      });
      assert.equal(
        shown,
        "2147483647ms",
        "statement_timeout in a transaction under a 30-day deadline",
      );
      const [row] = await sql<{ n: number }[]>`select 1 as n`; // the pool's only connection
      assert.equal(row!.n, 1);
      assert.deepEqual(await inTransaction("tx_far"), [], "sessions left in a transaction");
      cancel();
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it("never leaves a connection in a transaction under deadlines of 0 to 6 ms, many times", async (t) => {
    const application = "tx_tiny";
    const sql = postgres(db.url, {
      max: 2,
      onnotice: () => {},
      connection: { application_name: application },
    });
    const budget = Date.now() + 50_000;
    const outcomes = new Map<string, number>();
    let rounds = 0;
    // Two transactions at once per round, one per connection, then a look at both sessions.
    const one = async (id: number, ms: number): Promise<void> => {
      const [ctx, cancel] = withTimeout(background(), ms);
      let outcome = "committed";
      try {
        await begin(ctx, sql, async (_ctx, tx) => {
          await tx`insert into tiny values (${id}, 1)`;
          await tx`update tiny set v = 2 where id = ${id}`;
        });
      } catch (err) {
        assert.equal(
          err,
          DeadlineExceeded,
          `transaction ${id}: begin rejected with ${String(err)} (on ${JSON.stringify((err as { query?: unknown }).query)})`,
        );
        outcome = "DeadlineExceeded";
      } finally {
        cancel();
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    };
    try {
      while (rounds < 2_000 && Date.now() < budget) {
        const i = rounds++;
        await Promise.all([one(2 * i, (i % 60) / 10), one(2 * i + 1, ((i + 30) % 60) / 10)]);
        // Another caller's statements on the same two connections never see a
        // statement timeout left over from a transaction.
        await Promise.all([sql`select 1`, sql`select 2`]);
        await sleep(5);
        assert.deepEqual(
          await inTransaction(application),
          [],
          `round ${i}: sessions left in a transaction`,
        );
      }
      // Both connections serve raw statements.
      await Promise.all([sql`select 1`, sql`select 2`, sql`select 3`, sql`select 4`]);
    } finally {
      await sql.end({ timeout: 5 });
    }
    t.diagnostic(`${rounds} rounds: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.ok(rounds >= 100, `only ${rounds} rounds in the time budget`);
  });

  it("after a transaction that ended near its deadline, clears a statement timeout the server may carry over", async () => {
    const sent: string[] = [];
    const sql = postgres(db.url, { max: 1, debug: (_c, text) => sent.push(text) });
    try {
      const [far, cancelFar] = withTimeout(background(), 60_000);
      await begin(far, sql, async (_ctx, tx) => tx`select 1 as far`);
      cancelFar();
      await sql`select 2 as next_caller`;
      assert.deepEqual(
        sent.slice(sent.indexOf("commit") + 1),
        ["select 2 as next_caller"],
        `far from the deadline, sent ${JSON.stringify(sent)}`,
      );
      const near = await nearDeadlineRuns(sent, async (ctx) => {
        await begin(ctx, sql, async (_ctx, tx) => tx`select 1 as near`);
        await sql`select 2 as next_caller`;
      });
      const commit = near.indexOf("commit");
      const next = near.findIndex((text) => text.includes("next_caller"));
      assert.ok(commit >= 0 && next > commit, `sent ${JSON.stringify(near)}`);
      assert.deepEqual(near.slice(commit + 1, next), [""], "between COMMIT and the next caller");
      // Ended by the deadline instead: the ROLLBACK is followed by the same.
      sent.length = 0;
      const [ctx, cancel] = withTimeout(background(), 300);
      await assert.rejects(
        begin(ctx, sql, async (_ctx, tx) => tx`select pg_sleep(30)`),
        (err) => err === DeadlineExceeded,
      );
      cancel();
      await sql`select 3 as next_caller`;
      const rollback = sent.indexOf("rollback");
      const after = sent.findIndex((text) => text.includes("next_caller"));
      assert.ok(rollback >= 0 && after > rollback, `sent ${JSON.stringify(sent)}`);
      assert.deepEqual(
        sent.slice(rollback + 1, after),
        [""],
        "between ROLLBACK and the next caller",
      );
    } finally {
      await sql.end();
    }
  });

  it("cancels a statement fn left running when fn throws, and rolls back at once", async () => {
    const sql = postgres(db.url, { max: 1, connection: { application_name: "tx_throw" } });
    try {
      const [ctx, cancel] = withCancel(background());
      const boom = new Error("fn failed");
      const t0 = Date.now();
      const got = await settledWithin(
        begin(ctx, sql, async (_ctx, tx) => {
          await tx`insert into items (name) values ('thrown')`;
          void tx`select pg_sleep(30) as tx_left_running`.catch(() => {});
          await sleep(100);
          throw boom;
        }),
        20_000,
      );
      const took = Date.now() - t0;
      assert.equal(got, boom, `begin settled with ${String(got)}, want fn's error`);
      assert.ok(
        took < 5_000,
        `begin rejected ${took} ms after it started, want well under pg_sleep(30)`,
      );
      assert.equal(await activeLike("tx_left_running"), 0, "backends still running fn's statement");
      assert.equal(
        (await sql`select 1 from items where name = 'thrown'`).length,
        0,
        "rolled-back row",
      );
      assert.deepEqual(await inTransaction("tx_throw"), [], "sessions left in a transaction");
      cancel();
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it("rejects, not commits, when fn returns while a statement it did not await still runs", async () => {
    const sql = postgres(db.url, { max: 1 });
    try {
      const [ctx, cancel] = withCancel(background());
      await assert.rejects(
        begin(ctx, sql, async (_ctx, tx) => {
          await tx`insert into items (name) values ('unawaited')`;
          void tx`select pg_sleep(30) as tx_unawaited`.catch(() => {});
          await sleep(100);
        }),
        /rolled back, not committed/,
      );
      assert.equal(await activeLike("tx_unawaited"), 0, "backends still running fn's statement");
      assert.equal((await sql`select 1 from items where name = 'unawaited'`).length, 0);
      cancel();
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it("a postgres.js query method on a statement through tx throws a TypeError naming begin, and nothing is sent", async () => {
    await withMisuseHarness(async (sql, contexts) => {
      for (const [name, ctx] of contexts) {
        const one = await begin(ctx, sql, async (_ctx, tx) => {
          for (const method of QUERY_METHODS) {
            for (const [form, make] of [
              ["tag", () => tx`select * from no_such_table_${sql.unsafe(method)}`],
              ["unsafe", () => tx.unsafe(`select * from no_such_table_${method}`)],
            ] as const) {
              const statement = make() as unknown as Record<string, () => unknown> &
                Promise<unknown>;
              let thrown: unknown = "nothing";
              try {
                statement[method]!();
              } catch (e) {
                thrown = e;
              }
              // Awaited whatever the method did: a statement that ran is not left behind.
              const settled = await statement.then(
                () => "resolved",
                (e: unknown) => e,
              );
              assert.ok(
                thrown instanceof TypeError &&
                  /^begin\(ctx, sql, fn\): \.\w+\(\).*through tx.*await it/.test(thrown.message),
                `${name}, ${form}: .${method}() threw ${String(thrown)}, want begin's TypeError saying to await`,
              );
              assert.equal(
                settled,
                thrown,
                `${name}, ${form}: awaited after .${method}(), settled with ${String(settled)}, want the TypeError`,
              );
            }
          }
          const [row] = await tx<{ one: number }[]>`select 1 as one`;
          return row!.one;
        });
        assert.equal(one, 1, `${name}: the transaction's next statement, committed`);
      }
    });
  });
});
