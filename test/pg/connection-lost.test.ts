/**
 * A connection that dies while taproot holds it (its backend terminated by an
 * administrator, the server gone): node-postgres then emits 'error' on the
 * client, which pg-pool no longer listens to once the client is checked out.
 * Unheard, that event is an uncaught exception that takes the whole process
 * down. The statement must fail instead, and the pool go on serving.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import QueryStream from "pg-query-stream";
import { background } from "../../src/index.js";
import { query, stream, transaction } from "../../src/pg/index.js";
import { pollUntil } from "../helpers.js";
import { useTestDatabase } from "./database.js";

const fixture = useTestDatabase({ max: 1 });

/** terminate ends, as an administrator would, the backend running a statement that carries `marker`. */
async function terminate(marker: string): Promise<void> {
  const running = `select pid from pg_stat_activity where state = 'active' and query like '%${marker}%' and pid <> pg_backend_pid()`;
  await pollUntil(`${marker} running`, 5000, async () => {
    return (await fixture.admin.query(running)).rows.length === 1;
  });
  await fixture.admin.query(`select pg_terminate_backend(pid) from (${running}) as r`);
}

describe("a connection lost while taproot holds it", () => {
  for (const [what, run] of [
    [
      "query(ctx, pool)",
      (p: pg.Pool) => query(background(), p, "select pg_sleep(5) /* lost_query */"),
    ],
    [
      "transaction(ctx, pool, fn)",
      (p: pg.Pool) =>
        transaction(background(), p, async (ctx, client) => {
          await query(ctx, client, "select pg_sleep(5) /* lost_transaction */");
        }),
    ],
    [
      "stream(ctx, pool, queryStream)",
      (p: pg.Pool) =>
        new Promise<void>((resolve, reject) => {
          const s = stream(
            background(),
            p,
            new QueryStream("select pg_sleep(5) /* lost_stream */"),
          );
          s.once("error", reject);
          s.once("end", resolve);
          s.resume();
        }),
    ],
  ] as const) {
    it(`${what}: fails, without an uncaught 'error', and the pool serves on`, async () => {
      const p = new pg.Pool({ connectionString: fixture.db.url, max: 1 });
      p.on("error", () => {}); // an idle connection's error is the pool's to report
      try {
        // Settled into a value at once: it fails while terminate() is still awaited.
        const outcome = run(p).then(
          () => "resolved",
          (error: unknown) => error,
        );
        const marker = what.startsWith("query")
          ? "lost_query"
          : what.startsWith("transaction")
            ? "lost_transaction"
            : "lost_stream";
        await terminate(marker);
        assert.match(String(await outcome), /terminat/i);
        assert.equal((await query(background(), p, "select 1 as n")).rows[0]!.n, 1);
      } finally {
        await p.end();
      }
    });
  }
});
