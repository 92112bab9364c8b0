import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import {
  background,
  Canceled,
  DeadlineExceeded,
  withCancel,
  withTimeout,
} from "../../src/index.js";
import { connect, query, transaction } from "../../src/pg/index.js";
import { delay } from "../helpers.js";
import { useTestDatabase } from "./database.js";
import { nearDeadlineRuns, recordTexts } from "./near-deadline.js";

const fixture = useTestDatabase({ max: 1 }, (admin) =>
  admin.query("create table items (id serial primary key, name text not null)"),
);

async function names(): Promise<string[]> {
  return (
    await fixture.admin.query<{ name: string }>("select name from items order by id")
  ).rows.map((r) => r.name);
}

/** States of this database's other backends, e.g. ["idle", "idle in transaction"]. */
async function sessions(): Promise<string[]> {
  const { rows } = await fixture.admin.query<{ state: string }>(
    "select state from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'",
  );
  return rows.map((r) => r.state).sort();
}

function counts(p: pg.Pool) {
  return { total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount };
}

async function settled(p: pg.Pool, want: { total: number; idle: number; waiting: number }) {
  for (let i = 0; i < 200 && JSON.stringify(counts(p)) !== JSON.stringify(want); i++)
    await delay(10);
  assert.deepEqual(counts(p), want, "pool counts");
}

describe("connect(ctx, pool)", () => {
  it("checks out a client", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const client = await connect(background(), p);
    assert.equal((await query(background(), client, "select 1 as n")).rows[0]!.n, 1);
    client.release();
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("stops waiting when ctx ends; the client that arrives later goes back to the pool", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const held = await p.connect();
    const [ctx, cancel] = withTimeout(background(), 50);
    const t0 = performance.now();
    await assert.rejects(connect(ctx, p), (e) => e === DeadlineExceeded);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `gave up after ${ms.toFixed(0)} ms, want ~50`);
    cancel();
    assert.equal(
      p.waitingCount,
      1,
      "the abandoned wait is still queued in pg-pool (it cannot withdraw)",
    );
    held.release(); // goes to the abandoned waiter, which releases it at once
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    const again = await connect(background(), p);
    again.release();
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("a context already done does not touch the pool", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const [ctx, cancel] = withCancel(background());
    cancel();
    await assert.rejects(connect(ctx, p), (e) => e === Canceled);
    assert.deepEqual(counts(p), { total: 0, idle: 0, waiting: 0 });
    await p.end();
  });

  it("rejects bad input with the function's name and the fix", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    assert.throws(
      () => connect(undefined as never, p),
      /^TypeError: connect\(ctx, pool\): ctx is undefined; pass background\(\)/,
    );
    assert.throws(
      () => connect(background(), {} as never),
      /connect\(ctx, pool\): pool must be a pg Pool \(new pg\.Pool\(\.\.\.\)\), got an object/,
    );
    const c = await p.connect();
    assert.throws(() => connect(background(), c as never), /a PoolClient is already checked out/);
    c.release();
    await p.end();
    assert.throws(() => connect(background(), p), /connect\(ctx, pool\): the pool was ended/);
  });
});

describe("transaction(ctx, pool, fn)", () => {
  it("commits when fn resolves and returns its value", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    const got = await transaction(background(), p, async (ctx, client) => {
      await query(ctx, client, "insert into items (name) values ($1)", ["a"]);
      return "done";
    });
    assert.equal(got, "done");
    assert.deepEqual(await names(), ["a"]);
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("rolls back when fn throws, and rejects with its error", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    const boom = new Error("boom");
    await assert.rejects(
      transaction(background(), p, async (ctx, client) => {
        await query(ctx, client, "insert into items (name) values ('b')");
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.deepEqual(await names(), []);
    assert.deepEqual(await sessions(), ["idle"]);
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("rolls back when ctx is canceled mid-statement; nothing half-committed, nothing idle in transaction", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    const [ctx, cancel] = withCancel(background());
    setTimeout(cancel, 200);
    await assert.rejects(
      transaction(ctx, p, async (ctx, client) => {
        await query(ctx, client, "insert into items (name) values ('c')");
        await query(ctx, client, "select pg_sleep(30)");
        await query(ctx, client, "insert into items (name) values ('d')");
      }),
      (e) => e === Canceled,
    );
    assert.deepEqual(await names(), []);
    const states = await sessions();
    assert.ok(
      !states.includes("idle in transaction") && !states.includes("active"),
      `sessions: ${states}`,
    );
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    // The connection is clean for the next transaction.
    await transaction(background(), p, async (ctx, client) => {
      await query(ctx, client, "insert into items (name) values ('e')");
    });
    assert.deepEqual(await names(), ["e"]);
    await p.end();
  });

  it("after a transaction that ended near its deadline, clears a statement timeout the server may carry over", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const texts = recordTexts(p);
    const [far, cancelFar] = withTimeout(background(), 60_000);
    await transaction(far, p, (ctx, client) => query(ctx, client, "select 1 as far"));
    cancelFar();
    assert.equal(texts.at(-1), "COMMIT", `far from the deadline, sent ${JSON.stringify(texts)}`);
    const near = await nearDeadlineRuns(texts, async (ctx) => {
      await transaction(ctx, p, (ctx, client) => query(ctx, client, "select 1 as near"));
      await p.query("select 2 as next_caller");
    });
    const commit = near.indexOf("COMMIT");
    assert.deepEqual(near.slice(commit + 1), ["", "select 2 as next_caller"], JSON.stringify(near));
    // Ended by the deadline instead: the ROLLBACK is followed by the same.
    texts.length = 0;
    const [ctx, cancel] = withTimeout(background(), 300);
    await assert.rejects(
      transaction(ctx, p, (ctx, client) => query(ctx, client, "select pg_sleep(30)")),
      (err) => err === DeadlineExceeded,
    );
    cancel();
    await p.query("select 3 as next_caller");
    const rollback = texts.indexOf("ROLLBACK");
    assert.deepEqual(
      texts.slice(rollback + 1),
      ["", "select 3 as next_caller"],
      JSON.stringify(texts),
    );
    await p.end();
  });

  it("rolls back at once when ctx ends while fn waits between statements", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    const [ctx, cancel] = withCancel(background());
    let release!: () => void;
    const fnMayGoOn = new Promise<void>((resolve) => (release = resolve));
    let pid = 0;
    // Set once both statements are done: between them the backend is idle in
    // the transaction too, and a cancel then would hit the insert in flight
    // (whose connection is destroyed when its result wins the race).
    let waiting = false;
    const tx = transaction(ctx, p, async (ctx, client) => {
      const { rows } = await query<{ pid: number }>(ctx, client, "select pg_backend_pid() as pid");
      pid = rows[0]!.pid;
      await query(ctx, client, "insert into items (name) values ('f')");
      waiting = true;
      await fnMayGoOn; // not watching ctx
    });
    // The state of this transaction's own backend (other tests' backends may still be ending).
    const state = async (): Promise<string | undefined> => {
      const { rows } = await fixture.admin.query<{ state: string }>(
        "select state from pg_stat_activity where pid = $1",
        [pid],
      );
      return rows[0]?.state;
    };
    try {
      let seen: string | undefined;
      for (let i = 0; i < 500; i++) {
        seen = waiting ? await state() : undefined;
        if (seen === "idle in transaction") break;
        await delay(10);
      }
      assert.equal(seen, "idle in transaction", "the backend while fn waits");
      cancel();
      // The ROLLBACK may be seen running ("active") on the way to "idle".
      for (let i = 0; i < 1_000; i++) {
        seen = await state();
        if (seen === "idle" || seen === undefined) break;
        await delay(10);
      }
      assert.equal(seen, "idle", "the backend while fn still runs, after ctx ended");
    } finally {
      cancel();
      release();
    }
    await assert.rejects(tx, (e) => e === Canceled);
    assert.deepEqual(await names(), []);
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("the deadline stops a statement on the server (SET LOCAL statement_timeout) and rolls back", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    const [ctx, cancel] = withTimeout(background(), 400);
    const t0 = performance.now();
    await assert.rejects(
      transaction(ctx, p, async (ctx, client) => {
        await query(ctx, client, "insert into items (name) values ('g')");
        const seen = await query(ctx, client, "select current_setting('statement_timeout') as t");
        assert.match(seen.rows[0]!.t, /^\d+ms$/);
        await query(ctx, client, "select pg_sleep(30)");
      }),
      (e) => e === DeadlineExceeded,
    );
    const ms = performance.now() - t0;
    cancel();
    assert.ok(ms < 3000, `rejected after ${ms.toFixed(0)} ms, want ~400`);
    assert.deepEqual(await names(), []);
    const { rows } = await query(background(), p, "show statement_timeout");
    assert.equal(rows[0]!.statement_timeout, "0", "SET LOCAL outlived the transaction");
    await p.end();
  });

  it("a statement under a shorter child deadline does not cap the statements after it", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const slept = await transaction(withCancel(background())[0], p, async (ctx, client) => {
      const [short, cancel] = withTimeout(ctx, 200);
      await query(short, client, "select 1");
      cancel();
      // fn's ctx has no deadline: this runs past the child's 200 ms.
      const t0 = performance.now();
      await query(ctx, client, "select pg_sleep(0.5)");
      return performance.now() - t0;
    });
    assert.ok(slept >= 450, `pg_sleep(0.5) took ${slept.toFixed(0)} ms, want about 500`);
    await p.end();
  });

  it("under a deadline, a savepoint recovers from a failed statement and the transaction commits", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    const [ctx, cancel] = withTimeout(background(), 10_000);
    const got = await transaction(ctx, p, async (ctx, client) => {
      await query(ctx, client, "insert into items (name) values ('a')");
      await query(ctx, client, "savepoint s1");
      await assert.rejects(
        query(ctx, client, "insert into items (name) values (null)"),
        (e: { code?: string }) => e.code === "23502",
      );
      await query(ctx, client, "rollback to savepoint s1");
      await query(ctx, client, "insert into items (name) values ('b')");
      // The statements after the recovery still carry the deadline to the server.
      const seen = await query(ctx, client, "select current_setting('statement_timeout') as t");
      assert.match(seen.rows[0]!.t, /^\d+ms$/);
      return "committed";
    });
    cancel();
    assert.equal(got, "committed");
    assert.deepEqual(await names(), ["a", "b"]);
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("a COMMIT answered with ROLLBACK (a failed statement whose error fn caught) rejects", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await fixture.admin.query("truncate items");
    await assert.rejects(
      transaction(background(), p, async (ctx, client) => {
        await query(ctx, client, "insert into items (name) values ('h')");
        await query(ctx, client, "insert into items (name) values (null)").catch(() => {});
        return "looks fine";
      }),
      /transaction\(ctx, pool, fn\): the transaction was rolled back, not committed/,
    );
    assert.deepEqual(await names(), []);
    await settled(p, { total: 1, idle: 1, waiting: 0 });
    await p.end();
  });

  it("the ctx given to fn ends with the transaction", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    let inner: import("../../src/index.js").Context | undefined;
    await transaction(background(), p, async (ctx) => {
      inner = ctx;
    });
    assert.equal(inner?.err(), Canceled);
    await p.end();
  });

  it("rejects bad input with the function's name and the fix", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    await assert.rejects(
      transaction(null as never, p, async () => {}),
      /^TypeError: transaction\(ctx, pool, fn\): ctx is null/,
    );
    await assert.rejects(
      transaction(background(), "pool" as never, async () => {}),
      /pool must be a pg Pool/,
    );
    await assert.rejects(
      transaction(background(), p, "fn" as never),
      /fn must be an async function \(ctx, client\) => …, got "fn"/,
    );
    await p.end();
  });
});
