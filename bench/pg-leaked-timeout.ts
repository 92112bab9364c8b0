// How often PostgreSQL carries a statement_timeout over to the next command
// (src/pg/statement-timeout.ts, CLEAR_LEAKED_TIMEOUT), with the raw drivers
// and no taproot at all: each lane runs timed commands with 1 ms timeouts,
// each followed by an untimed `select`, and counts the untimed ones that fail
// with 57014 "canceling statement due to statement timeout".
//
//   node --import tsx bench/pg-leaked-timeout.ts     (DATABASE_URL, else an embedded PostgreSQL)
//
// ROUNDS (default 5000) timed commands per lane, LANES (default 4) lanes per
// driver. The leak needs the timer to fire in a narrow window, so it shows
// most on a loaded machine (run a CPU hog beside it).
import pg from "pg";
import postgres from "postgres";
import { startPostgres } from "../scripts/postgres.js";

const ROUNDS = Number(process.env.ROUNDS ?? 5_000);
const LANES = Number(process.env.LANES ?? 4);

interface Tally {
  timed: number;
  timedFailed: number;
  nextFailed: number;
}

/** node-postgres: `SET LOCAL statement_timeout = 1; select i` in one message, as taproot's prefix sends it. */
async function nodePostgresLane(url: string, tally: Tally): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let i = 0; i < ROUNDS; i++) {
      tally.timed++;
      await client.query(`set local statement_timeout = 1; select ${i}`).catch(() => {
        tally.timedFailed++;
      });
      await client.query(`select ${i} as next`).catch(() => {
        tally.nextFailed++;
      });
    }
  } finally {
    await client.end();
  }
}

/** postgres.js: a transaction under SET LOCAL statement_timeout = 1, as begin() runs one, then an untimed select. */
async function postgresJsLane(sql: postgres.Sql, lane: number, tally: Tally): Promise<void> {
  const reserved = await sql.reserve();
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const id = lane * 1_000_000 + i;
      tally.timed++;
      try {
        await reserved.unsafe("begin");
        await reserved.unsafe("set local statement_timeout = 1");
        await reserved.unsafe(`insert into leaked_timeout values (${id})`);
        await reserved.unsafe("commit");
      } catch {
        tally.timedFailed++;
        await reserved.unsafe("rollback").catch(() => {});
      }
      await reserved.unsafe(`select ${i} as next`).catch(() => {
        tally.nextFailed++;
      });
    }
  } finally {
    reserved.release();
  }
}

const server = await startPostgres();
try {
  const node: Tally = { timed: 0, timedFailed: 0, nextFailed: 0 };
  const lanes = Array.from({ length: LANES }, (_, lane) => lane);
  await Promise.all(lanes.map(() => nodePostgresLane(server.url, node)));

  const sql = postgres(server.url, { max: LANES, onnotice: () => {} });
  const js: Tally = { timed: 0, timedFailed: 0, nextFailed: 0 };
  try {
    await sql`create table leaked_timeout (id int primary key)`;
    await Promise.all(lanes.map((lane) => postgresJsLane(sql, lane, js)));
    await sql`drop table leaked_timeout`;
  } finally {
    await sql.end();
  }

  const line = (driver: string, t: Tally) =>
    `${driver}: ${t.timed} timed commands (${t.timedFailed} stopped by their own timeout); ` +
    `${t.nextFailed} untimed commands after them failed with a timeout they did not have`;
  console.log(line("node-postgres", node));
  console.log(line("postgres.js (transactions)", js));
} finally {
  await server.stop();
}
