import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import Cursor from "pg-cursor";
import QueryStream from "pg-query-stream";
import { background, Canceled, withCancel, withTimeout } from "../../src/index.js";
import { cursor, query, stream } from "../../src/pg/index.js";
import { pollUntil } from "../helpers.js";
import { useTestDatabase } from "./database.js";

const fixture = useTestDatabase({ max: 1 });

/** A statement whose every row takes `ms` of server time: a batch of 100 rows is a slow batch. */
const SLOW = (ms: number) =>
  `select n, pg_sleep(${ms / 1000}) from generate_series(1, 100000) as n /* slow-stream */`;

async function activeSlow(): Promise<number> {
  const { rows } = await fixture.admin.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%slow-stream%' and pid <> pg_backend_pid()",
  );
  return rows[0]!.n;
}

/**
 * cancelDuringBatch reads `s` until its first (5 s) batch runs on the
 * server, then cancels its context: the stream must error with Canceled,
 * the backend leave 'active', and the stream close, all well before the
 * batch's end.
 */
async function cancelDuringBatch(s: QueryStream, cancel: () => void): Promise<void> {
  const failed = new Promise<unknown>((resolve) => s.once("error", resolve));
  const closed = new Promise<void>((resolve) => s.once("close", resolve));
  s.resume();
  await pollUntil("batch running", 5000, async () => (await activeSlow()) === 1);
  const t0 = performance.now();
  cancel();
  assert.equal(await failed, Canceled);
  const gone = await pollUntil("backend stopped", 3000, async () => (await activeSlow()) === 0);
  assert.ok(gone < 3000, `backend active ${gone.toFixed(0)} ms after cancel`);
  await closed;
  const ms = performance.now() - t0;
  assert.ok(
    ms < 3000,
    `stream closed ${ms.toFixed(0)} ms after cancel, want well before the batch's 5 s`,
  );
}

describe("stream(ctx, db, queryStream)", () => {
  it("streams every row when nothing cancels", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const [ctx, cancel] = withCancel(background());
    const rows: number[] = [];
    for await (const row of stream(
      ctx,
      p,
      new QueryStream("select n from generate_series(1, 250) n", [], { batchSize: 100 }),
    )) {
      rows.push((row as { n: number }).n);
    }
    cancel();
    assert.equal(rows.length, 250);
    await pollUntil("released", 2000, async () => p.idleCount === 1);
    await p.end();
  });

  it("stops the batch the server is executing: the backend leaves active, the stream errors with ctx.err()", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const [ctx, cancel] = withCancel(background());
    // 100 rows of 50 ms: the first batch alone takes 5 s on the server.
    await cancelDuringBatch(
      stream(ctx, p, new QueryStream(SLOW(50), [], { batchSize: 100 })),
      cancel,
    );
    // The connection came back clean (57014, idle, cancel closed) or was destroyed: either way the pool serves.
    assert.equal((await query(background(), p, "select 1 as n")).rows[0]!.n, 1);
    await p.end();
  });

  it("on a held client, stops a first batch asked for right after submit, and keeps the connection", async () => {
    // On a client you hold the stream is submitted at once and its first
    // read follows before the statement's RowDescription: pg-cursor then
    // reads "idle" during that whole batch.
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const client = await p.connect();
    const pid = (client as unknown as { processID: number }).processID;
    const [ctx, cancel] = withCancel(background());
    await cancelDuringBatch(
      stream(ctx, client, new QueryStream(SLOW(50), [], { batchSize: 100 })),
      cancel,
    );
    // Canceled with 57014 and idle again: the client you hold stays yours.
    const { rows } = await query(background(), client, "select pg_backend_pid() as pid");
    assert.equal(rows[0]!.pid, pid, "the connection was replaced, want it kept");
    client.release();
    await p.end();
  });

  it("on a held client, stops between batches without a cancel and keeps the connection", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const client = await p.connect();
    const pid = (client as unknown as { processID: number }).processID;
    const [ctx, cancel] = withCancel(background());
    const s = stream(
      ctx,
      client,
      new QueryStream("select n from generate_series(1, 100000) n", [], { batchSize: 10 }),
    );
    const failed = new Promise<unknown>((resolve) => s.once("error", resolve));
    const closed = new Promise<void>((resolve) => s.once("close", resolve));
    await new Promise((resolve) => s.once("readable", resolve)); // a batch is in; nothing asks for more
    cancel();
    assert.equal(await failed, Canceled);
    await closed;
    const { rows } = await query(background(), client, "select pg_backend_pid() as pid");
    assert.equal(rows[0]!.pid, pid, "the connection was replaced, want it kept");
    client.release();
    await p.end();
  });

  it("a stream destroyed while its connection is checked out gives the connection back", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const s = stream(background(), p, new QueryStream("select n from generate_series(1, 10) n"));
    const closed = new Promise<void>((resolve) => s.once("close", resolve));
    s.destroy();
    await closed;
    // The checkout completes after the destroy; the pool's one connection must come back unused.
    await pollUntil(
      "connection back",
      3000,
      async () => p.totalCount === 1 && p.idleCount === 1 && p.waitingCount === 0,
    );
    assert.equal((await query(background(), p, "select 1 as n")).rows[0]!.n, 1);
    await p.end();
  });

  it("on a held client, a stream canceled while queued behind another query never starts", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const client = await p.connect();
    const first = client.query("select pg_sleep(0.3)");
    const [ctx, cancel] = withCancel(background());
    const s = stream(ctx, client, new QueryStream(SLOW(50), [], { batchSize: 100 }));
    const failed = new Promise<unknown>((resolve) => s.once("error", resolve));
    const closed = new Promise<void>((resolve) => s.once("close", resolve));
    cancel();
    assert.equal(await failed, Canceled);
    await closed;
    await first;
    // Withdrawn from the client's queue: it never reaches the server, and the client serves on.
    // A client left hung fails here, at 3 s, instead of hanging the test.
    const [limit, stopLimit] = withTimeout(background(), 3000);
    const { rows } = await query(limit, client, "select 2 as n");
    stopLimit();
    assert.equal(rows[0]!.n, 2);
    assert.equal(await activeSlow(), 0, "the withdrawn stream's statement runs");
    client.release();
    await p.end();
  });

  it("rejects what is not a QueryStream", () => {
    assert.throws(
      () => stream(background(), fixture.admin, {} as never),
      /^TypeError: stream\(ctx, db, queryStream\): queryStream must be new QueryStream\(text, values\) from pg-query-stream, got an object/,
    );
    assert.throws(
      () => stream(undefined as never, fixture.admin, new QueryStream("select 1")),
      /ctx is undefined/,
    );
    // A QueryStream where a Cursor belongs has a read() too, of another kind.
    assert.throws(
      () => cursor(background(), fixture.admin, new QueryStream("select 1")),
      /^TypeError: cursor\(ctx, db, cursor\): cursor must be new Cursor\(text, values\) from pg-cursor, got a QueryStream/,
    );
  });
});

describe("cursor(ctx, db, cursor)", () => {
  it("reads batches, then the end", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const reader = cursor<{ n: number }>(
      background(),
      p,
      new Cursor("select n from generate_series(1, 25) n"),
    );
    const sizes: number[] = [];
    for (let rows = await reader.read(10); rows.length > 0; rows = await reader.read(10))
      sizes.push(rows.length);
    await reader.close();
    assert.deepEqual(sizes, [10, 10, 5]);
    await pollUntil("released", 2000, async () => p.idleCount === 1);
    await p.end();
  });

  it("a read during a slow batch rejects with ctx.err() and the backend stops", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
    const [ctx, cancel] = withCancel(background());
    const reader = cursor(ctx, p, new Cursor(SLOW(50)));
    const reading = reader.read(100);
    await pollUntil("batch running", 5000, async () => (await activeSlow()) === 1);
    cancel();
    await assert.rejects(reading, (e) => e === Canceled);
    await pollUntil("backend stopped", 3000, async () => (await activeSlow()) === 0);
    await assert.rejects(reader.read(1), (e) => e === Canceled);
    await reader.close();
    await pollUntil(
      "pool whole",
      3000,
      async () => p.waitingCount === 0 && p.totalCount === p.idleCount,
    );
    assert.equal((await query(background(), p, "select 1 as n")).rows[0]!.n, 1);
    await p.end();
  });

  for (const end of ["the context ends", "it is closed"] as const) {
    it(`on a held client, a cursor queued behind another query never starts when ${end}`, async () => {
      const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
      const client = await p.connect();
      const first = client.query("select pg_sleep(0.3)");
      const [ctx, cancel] = withCancel(background());
      const reader = cursor(ctx, client, new Cursor(SLOW(50)));
      if (end === "the context ends") {
        cancel();
        await assert.rejects(reader.read(5), (e) => e === Canceled);
      }
      await reader.close();
      await first;
      // A client left hung fails here, at 3 s, instead of hanging the test.
      const [limit, stopLimit] = withTimeout(background(), 3000);
      const { rows } = await query(limit, client, "select 2 as n");
      stopLimit();
      assert.equal(rows[0]!.n, 2);
      assert.equal(await activeSlow(), 0, "the withdrawn cursor's statement runs");
      cancel();
      client.release();
      await p.end();
    });
  }

  it("refuses a Cursor or QueryStream used before, without touching the pool; the first still reads right", async () => {
    const p = new pg.Pool({ connectionString: fixture.db.url, max: 2 });
    let acquired = 0;
    p.on("acquire", () => acquired++);
    const c = new Cursor("select 1 as x");
    const first = cursor(background(), p, c);
    assert.throws(() => cursor(background(), p, c), {
      name: "TypeError",
      message:
        /^cursor\(ctx, db, cursor\): cursor was already used .*make a new Cursor\(text, values\) for each call/,
    });
    assert.deepEqual(await first.read(5), [{ x: 1 }]);
    await first.close();
    assert.equal(acquired, 1, "checkouts, want 1: the refused call must not check one out");

    const qs = new QueryStream("select g from generate_series(1, 3) g");
    const s = stream(background(), p, qs);
    assert.throws(() => stream(background(), p, qs), {
      name: "TypeError",
      message:
        /^stream\(ctx, db, queryStream\): queryStream was already used .*make a new QueryStream\(text, values\) for each call/,
    });
    assert.throws(() => cursor(background(), p, qs.cursor), /cursor was already used/);
    const rows: unknown[] = [];
    for await (const row of s) rows.push(row);
    assert.deepEqual(rows, [{ g: 1 }, { g: 2 }, { g: 3 }]);

    // A Cursor you submitted yourself is as used.
    const client = await p.connect();
    const mine = client.query(new Cursor("select 2 as y"));
    assert.throws(() => cursor(background(), p, mine), /cursor was already used/);
    await new Promise<void>((resolve) => mine.close(() => resolve()));
    client.release();

    // Every connection went back idle: both serve a query.
    const [ctx, cancel] = withTimeout(background(), 5_000);
    const both = await Promise.all([
      query(ctx, p, "select 2 as y"),
      query(ctx, p, "select 3 as y"),
    ]);
    cancel();
    assert.deepEqual(
      both.map((r) => r.rows[0]),
      [{ y: 2 }, { y: 3 }],
    );
    await p.end();
  });

  it("read(rows) takes a whole number of rows, 1 or more", async () => {
    const reader = cursor(background(), fixture.admin, new Cursor("select 1 as n"));
    for (const rows of [0, -1, 1.5, Number.NaN, "10", undefined, 2 ** 32]) {
      await assert.rejects(reader.read(rows as never), {
        name: "TypeError",
        message:
          /^cursor\(ctx, db, cursor\)\.read\(rows\): rows must be a whole number from 1 to 2147483647, got /,
      });
    }
    assert.deepEqual(await reader.read(5), [{ n: 1 }]);
    await reader.close();
  });
});
