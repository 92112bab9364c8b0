// The race a CancelRequest invites (pg-notes §1.0, lib/pq#1001, Effect-TS/effect#8068):
// the context ends at the moment the result arrives, the connection is handed
// to the next query at once, and a cancel that lands late would kill that
// query. Provoked thousands of times, with the cancel placed before, at and
// after the reply; the next query must never see 57014.
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { background, Canceled, withCancel } from "../../src/index.js";
import { query } from "../../src/pg/index.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

let db: TestDatabase;
before(async () => {
  db = await createTestDatabase();
});
after(() => db.drop());

/**
 * Lanes race side by side, each on its own pool of one, ROUNDS each: 2,000
 * races in all, however slow the machine (a time budget would make a loaded
 * machine run too few; the runner's own timeout bounds the test).
 */
const LANES = 4;
const ROUNDS = 500;

interface Tally {
  rounds: number;
  canceled: number;
  completed: number;
  nextCanceled: number;
  nextOtherErrors: string[];
  reused: number;
  destroyed: number;
}

/**
 * provoke runs the race on `target` (the pool itself, or a client held from it):
 * a short query whose context is canceled at a point drawn from around its reply,
 * then at once the next query on the same connection.
 */
async function provoke(poolSize: 1, hold: boolean): Promise<Tally> {
  const p = new pg.Pool({ connectionString: db.url, max: poolSize });
  const tally: Tally = {
    rounds: 0,
    canceled: 0,
    completed: 0,
    nextCanceled: 0,
    nextOtherErrors: [],
    reused: 0,
    destroyed: 0,
  };
  let client: pg.PoolClient | undefined = hold ? await p.connect() : undefined;
  try {
    while (tally.rounds < ROUNDS) {
      tally.rounds++;
      const target = client ?? p;
      const [ctx, cancel] = withCancel(background());
      const pick = tally.rounds % 4;
      let first: Promise<unknown>;
      if (pick === 0) {
        // In the same tick as the reply's first bytes: the rows are in hand, the callback is next.
        first = query(ctx, target, "select pg_sleep(0.001), 1 as n");
        const c = client ?? (await firstClient(p));
        c?.connection.once("rowDescription", cancel);
      } else {
        first = query(ctx, target, "select pg_sleep(0.001), 1 as n");
        // Just before, at, or just after the ~1 ms statement ends.
        const delay = [0, 1, 2][pick - 1]!;
        if (delay === 0) setImmediate(cancel);
        else setTimeout(cancel, delay);
      }
      await first.then(
        () => tally.completed++,
        (e) => {
          assert.equal(e, Canceled, `first query rejected with ${String(e)}, want Canceled`);
          tally.canceled++;
        },
      );
      cancel();
      if (client !== undefined && (client as unknown as { _ending: boolean })._ending) {
        // Destroyed after a cancel: the caller takes a new one, as it would after any broken connection.
        client.release();
        client = await p.connect();
      }
      // At once: the next query, long enough (2 ms) for a stray cancel to hit it.
      try {
        await query(background(), client ?? p, "select pg_sleep(0.002), 2 as n");
      } catch (e) {
        if ((e as { code?: string }).code === "57014") tally.nextCanceled++;
        else tally.nextOtherErrors.push(String(e));
      }
    }
  } finally {
    client?.release();
    await p.end();
  }
  return tally;
}

/** The pool's only client, to watch its connection (the pool has max 1). */
async function firstClient(p: pg.Pool): Promise<pg.PoolClient | undefined> {
  return (p as unknown as { _clients: pg.PoolClient[] })._clients[0];
}

describe("a late cancel never reaches the next query", () => {
  for (const hold of [false, true]) {
    it(`${hold ? "on a held PoolClient" : "through a pool of one"}: thousands of races, the next query never canceled`, async () => {
      const fates = { reused: 0, destroyed: 0 };
      const listener = (m: unknown) => {
        if ((m as { outcome: string }).outcome === "reused") fates.reused++;
        else fates.destroyed++;
      };
      subscribe("taproot-context:pg:cancel", listener);
      const lanes = await Promise.all(
        Array.from({ length: LANES }, () => provoke(1, hold)),
      ).finally(() => unsubscribe("taproot-context:pg:cancel", listener));
      const t = lanes.reduce((a, b) => ({
        rounds: a.rounds + b.rounds,
        canceled: a.canceled + b.canceled,
        completed: a.completed + b.completed,
        nextCanceled: a.nextCanceled + b.nextCanceled,
        nextOtherErrors: [...a.nextOtherErrors, ...b.nextOtherErrors],
        reused: fates.reused,
        destroyed: fates.destroyed,
      }));
      console.log(`race (${hold ? "held client" : "pool"}):`, JSON.stringify(t));
      assert.equal(
        t.nextCanceled,
        0,
        `next queries canceled = ${t.nextCanceled} of ${t.rounds}, want 0`,
      );
      assert.deepEqual(t.nextOtherErrors, [], "next queries failed otherwise");
      assert.equal(t.rounds, LANES * ROUNDS, "every race ran");
      // The race really happened both ways.
      assert.ok(
        t.canceled > 0 && t.completed > 0,
        `canceled ${t.canceled}, completed ${t.completed}: want both`,
      );
      assert.ok(t.reused > 0, `connections reused after a cancel = ${t.reused}, want some`);
    });
  }
});
