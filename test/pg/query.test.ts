import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { describe, it } from "node:test";
import pg from "pg";
import {
  background,
  Canceled,
  cause,
  DeadlineExceeded,
  withCancel,
  withCancelCause,
  withTimeout,
} from "../../src/index.js";
import { query } from "../../src/pg/index.js";
import { delay, pollUntil } from "../helpers.js";
import { useTestDatabase } from "./database.js";
import { nearDeadlineRuns, recordTexts } from "./near-deadline.js";

/** settingMs reads a time setting as PostgreSQL shows it ("9987ms", or "10s" for a whole number of seconds) in ms. */
function settingMs(shown: string): number {
  const match = /^(\d+)(ms|s|min)$/.exec(shown);
  assert.ok(match, `time setting ${JSON.stringify(shown)}, want <n>ms, <n>s or <n>min`);
  const unit = match[2] === "ms" ? 1 : match[2] === "s" ? 1_000 : 60_000;
  return Number(match[1]) * unit;
}

const fixture = useTestDatabase({ max: 2, application_name: "admin" });

/** stateOf returns a backend's pg_stat_activity state ("active", "idle", …), or undefined once it is gone. */
async function stateOf(pid: number): Promise<string | undefined> {
  const { rows } = await fixture.admin.query<{ state: string }>(
    "select state from pg_stat_activity where pid = $1",
    [pid],
  );
  return rows[0]?.state;
}

/** activeLike counts backends running a statement whose text contains `marker` (not our own lookup). */
async function activeLike(marker: string): Promise<number> {
  const { rows } = await fixture.admin.query<{ n: number }>(
    "select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%' || $1 || '%' and pid <> pg_backend_pid()",
    [marker],
  );
  return rows[0]!.n;
}

function pool(max = 2): pg.Pool {
  return new pg.Pool({ connectionString: fixture.db.url, max });
}

describe("query(ctx, db, text, values)", () => {
  it("runs a query on a pool, a PoolClient and a Client", async () => {
    const p = pool();
    const got = await query<{ n: number }>(background(), p, "select $1::int + 1 as n", [41]);
    assert.deepEqual(got.rows, [{ n: 42 }]);
    const client = await p.connect();
    assert.equal((await query(background(), client, "select 'a' as s")).rows[0]!.s, "a");
    client.release();
    const single = new pg.Client({ connectionString: fixture.db.url });
    await single.connect();
    assert.equal((await query(withCancel(background())[0], single, "select 2 as n")).rows[0]!.n, 2);
    await single.end();
    await p.end();
  });

  it("rejects with the server's error for a bad statement, as pool.query does", async () => {
    const p = pool();
    const [ctx, cancel] = withCancel(background());
    await assert.rejects(
      query(ctx, p, "select * from no_such_table"),
      (e: { code?: string }) => e.code === "42P01",
    );
    cancel();
    assert.equal((await query(background(), p, "select 1 as n")).rows[0]!.n, 1);
    await p.end();
  });

  it("a context already done sends nothing and rejects with ctx.err()", async () => {
    const p = pool();
    let acquired = 0;
    p.on("acquire", () => acquired++);
    const [ctx, cancel] = withCancel(background());
    cancel();
    await assert.rejects(query(ctx, p, "select 1"), (e) => e === Canceled);
    const [late, stop] = withTimeout(background(), 0);
    await assert.rejects(query(late, p, "select 1"), (e) => e === DeadlineExceeded);
    stop();
    assert.equal(acquired, 0, `connections checked out = ${acquired}, want 0`);
    assert.equal(p.totalCount, 0, `pool.totalCount = ${p.totalCount}, want 0`);
    await p.end();
  });

  it("cancels on the server: the backend is no longer active, the promise rejects with ctx.err()", async () => {
    const p = pool(1);
    const client = await p.connect();
    const pid = (client as unknown as { processID: number }).processID;
    client.release();
    const [ctx, cancel] = withCancelCause(background());
    const running = query(ctx, p, "select pg_sleep(30) /* cancel-on-server */");
    await pollUntil(
      "query started",
      5000,
      async () => (await activeLike("cancel-on-server")) === 1,
    );
    const why = new Error("client went away");
    const t0 = performance.now();
    cancel(why);
    await assert.rejects(running, (e) => e === Canceled);
    const rejectedMs = performance.now() - t0;
    assert.equal(cause(ctx), why);
    const goneMs = await pollUntil(
      "backend stopped",
      5000,
      async () => (await stateOf(pid)) !== "active",
    );
    // Generous bounds (the bench measures the medians): a client-side timeout would leave it running for 30 s.
    assert.ok(
      rejectedMs < 1000,
      `rejected ${rejectedMs.toFixed(1)} ms after cancel, want well under 1 s`,
    );
    assert.ok(
      goneMs < 2000,
      `backend active ${goneMs.toFixed(1)} ms after cancel, want well under 2 s`,
    );
    // The connection ended with 57014, idle, cancel socket closed: it serves the next query.
    assert.equal((await query(background(), p, "select 7 as n")).rows[0]!.n, 7);
    await p.end();
  });

  it("on a client you hold, settles only once the client is safe to use again", async () => {
    const p = pool(1);
    const client = await p.connect();
    const pid = (client as unknown as { processID: number }).processID;
    const [ctx, cancel] = withCancel(background());
    const running = query(ctx, client, "select pg_sleep(30) /* held-client */");
    await pollUntil("query started", 5000, async () => (await activeLike("held-client")) === 1);
    cancel();
    await assert.rejects(running, (e) => e === Canceled);
    assert.notEqual(await stateOf(pid), "active");
    // Reused (57014 + ReadyForQuery + the cancel socket closed): same backend, next query fine.
    const { rows } = await query(
      background(),
      client,
      "select pg_backend_pid() as pid, pg_sleep(0.05)",
    );
    assert.equal(rows[0]!.pid, pid, `backend after cancel = ${rows[0]!.pid}, want the same ${pid}`);
    client.release();
    await p.end();
  });

  it("reports each canceled query's fate on the taproot-context:pg:cancel channel", async () => {
    const p = pool(1);
    const seen: { outcome: string; code?: string; cancelRequests: number }[] = [];
    const listener = (message: unknown) => seen.push(message as (typeof seen)[number]);
    subscribe("taproot-context:pg:cancel", listener);
    try {
      const [ctx, cancel] = withCancel(background());
      const running = query(ctx, p, "select pg_sleep(30) /* channel */");
      await pollUntil("query started", 5000, async () => (await activeLike("channel")) === 1);
      cancel();
      await assert.rejects(running);
      await pollUntil("fate published", 5000, async () => seen.length === 1);
      assert.deepEqual(
        { outcome: seen[0]!.outcome, code: seen[0]!.code, cancelRequests: seen[0]!.cancelRequests },
        { outcome: "reused", code: "57014", cancelRequests: 1 },
      );
    } finally {
      unsubscribe("taproot-context:pg:cancel", listener);
    }
    await p.end();
  });

  it("the deadline is enforced by the server: statement_timeout in the query's own round trip", async () => {
    const p = pool(1);
    const [ctx, cancel] = withTimeout(background(), 300);
    const t0 = performance.now();
    await assert.rejects(query(ctx, p, "select pg_sleep($1)", [30]), (e) => e === DeadlineExceeded);
    const ms = performance.now() - t0;
    cancel();
    assert.ok(ms >= 290 && ms < 3000, `rejected after ${ms.toFixed(0)} ms, want about 300`);
    // The setting did not outlive the query on the pooled connection.
    const { rows } = await query(background(), p, "show statement_timeout");
    assert.equal(rows[0]!.statement_timeout, "0");
    // The simple protocol (no parameters) carries it too, and results come back as usual.
    const [ctx2, cancel2] = withTimeout(background(), 10_000);
    const got = await query(ctx2, p, "select 1 as a, 'x' as b");
    assert.deepEqual(
      { rows: got.rows, command: got.command, rowCount: got.rowCount },
      {
        rows: [{ a: 1, b: "x" }],
        command: "SELECT",
        rowCount: 1,
      },
    );
    const inside = await query(ctx2, p, "select current_setting('statement_timeout') as t");
    const t = settingMs(inside.rows[0]!.t);
    assert.ok(
      t > 9000 && t <= 10_000,
      `statement_timeout seen by the query = ${inside.rows[0]!.t}, want ~10s`,
    );
    cancel2();
    await p.end();
  });

  it("a deadline never lifts the statement_timeout the pool was configured with", async () => {
    const configured = new pg.Pool({
      connectionString: fixture.db.url,
      max: 1,
      statement_timeout: 400,
    });
    try {
      const [ctx, cancel] = withTimeout(background(), 30_000);
      // With values (extended protocol) and without (simple protocol): the pool's 400 ms still stops each.
      for (const [text, values] of [
        ["select pg_sleep($1)", [3]],
        ["select pg_sleep(3)", undefined],
      ] as const) {
        const t0 = performance.now();
        await assert.rejects(
          query(ctx, configured, text, values === undefined ? undefined : [...values]),
          (e: { code?: string }) => e.code === "57014" && e !== DeadlineExceeded,
          `${text}: the server's own statement timeout, not the deadline`,
        );
        const ms = performance.now() - t0;
        assert.ok(
          ms >= 350 && ms < 2_500,
          `${text}: rejected after ${ms.toFixed(0)} ms, want ~400`,
        );
      }
      assert.equal(ctx.err(), null, "the deadline has not passed");
      const inside = await query(
        ctx,
        configured,
        "select current_setting('statement_timeout') as t",
      );
      assert.equal(inside.rows[0]!.t, "400ms", "statement_timeout under a 30 s deadline");
      cancel();
      // A deadline nearer than the configured value still wins.
      const [near, cancelNear] = withTimeout(background(), 150);
      await assert.rejects(
        query(near, configured, "select pg_sleep(3)"),
        (e) => e === DeadlineExceeded,
      );
      cancelNear();
    } finally {
      await configured.end();
    }
  });

  it("under a deadline, ROLLBACK and COMMIT end a failed transaction you began yourself", async () => {
    const p = pool(1);
    const client = await p.connect();
    const [ctx, cancel] = withTimeout(background(), 10_000);
    for (const end of ["ROLLBACK", "COMMIT"]) {
      await query(background(), client, "BEGIN");
      await assert.rejects(
        query(ctx, client, "select 1/0"),
        (e: { code?: string }) => e.code === "22012",
      );
      const ended = await query(ctx, client, end);
      assert.equal(ended.command, "ROLLBACK", `${end} answered ${ended.command}, want ROLLBACK`);
      assert.equal(client.getTransactionStatus(), "I", `after ${end}: still in the transaction`);
    }
    cancel();
    client.release();
    await p.end();
  });

  it("BEGIN under a deadline does not cap the statements of the transaction it opens", async () => {
    const p = pool(1);
    const client = await p.connect();
    for (const begin of [
      "BEGIN",
      "start transaction isolation level read committed",
      "select 1; begin",
    ]) {
      const [short, cancel] = withTimeout(background(), 100);
      await query(short, client, begin);
      cancel();
      assert.equal(client.getTransactionStatus(), "T", `after ${begin}: not in a transaction`);
      const { rows } = await query(background(), client, "show statement_timeout");
      assert.equal(rows[0]!.statement_timeout, "0", `after ${begin} under a 100 ms deadline`);
      if (begin === "BEGIN") {
        // Past the BEGIN's deadline, a statement under a context without one runs to its end.
        await query(background(), client, "select pg_sleep(1)");
      }
      await query(background(), client, "ROLLBACK");
    }
    client.release();
    await p.end();
  });

  it("in a transaction you began, a timed statement does not cap the later statements without a deadline", async () => {
    const p = pool(1);
    const texts = recordTexts(p);
    const client = await p.connect();
    try {
      await query(background(), client, "BEGIN");
      const [short, cancel] = withTimeout(background(), 300);
      await query(short, client, "select 1");
      await query(short, client, "select $1::int", [1]);
      cancel();
      // Each over the 300 ms of the timed statements, under contexts without a deadline.
      await query(background(), client, "savepoint s");
      await query(background(), client, "select pg_sleep(0.6)");
      // Rolling back to the savepoint undoes that statement's reset: the next one resets again.
      await query(background(), client, "rollback to savepoint s");
      await query(withCancel(background())[0], client, "select pg_sleep($1)", [0.6]);
      const { rows } = await query(background(), client, "show statement_timeout");
      assert.equal(rows[0]!.statement_timeout, "0", "statement_timeout without a deadline");
      // In a failed transaction, and for transaction control, statements still go as they are.
      texts.length = 0;
      await assert.rejects(query(background(), client, "select 1/0"));
      // node-postgres rejects at the error, before the ReadyForQuery that says the
      // transaction failed; a statement sent in between may still carry the reset,
      // which the failed transaction refuses with it (25P02).
      await assert.rejects(query(background(), client, "select 3"), { code: "25P02" });
      await query(background(), client, "COMMIT");
      await query(background(), client, "select 2");
      assert.equal(texts[0], "SET LOCAL statement_timeout TO DEFAULT; select 1/0");
      assert.match(texts[1]!, /^(SET LOCAL statement_timeout TO DEFAULT; )?select 3$/);
      assert.deepEqual(texts.slice(2), ["COMMIT", "select 2"], "sent after the timed statements");
    } finally {
      client.release();
    }
    // The reset is the session's configured value (here the connection's statement_timeout).
    const configured = new pg.Pool({
      connectionString: fixture.db.url,
      max: 1,
      statement_timeout: 5_000,
    });
    const held = await configured.connect();
    try {
      await query(background(), held, "BEGIN");
      const [short, cancel] = withTimeout(background(), 300);
      await query(short, held, "select 1");
      cancel();
      const { rows } = await query(background(), held, "show statement_timeout");
      assert.equal(rows[0]!.statement_timeout, "5s", "statement_timeout without a deadline");
      await query(background(), held, "ROLLBACK");
    } finally {
      held.release();
    }
    await configured.end();
    await p.end();
  });

  it("a statement that cannot run in a transaction block still runs under a deadline", async () => {
    const p = pool(1);
    await query(background(), p, "create table vac (x int)");
    const [ctx, cancel] = withTimeout(background(), 10_000);
    await query(ctx, p, "vacuum vac");
    cancel();
    await p.end();
  });

  it("a procedure or DO block that commits runs under a deadline as it does without one", async () => {
    const p = pool(1);
    await query(background(), p, "create table called (n int)");
    await query(
      background(),
      p,
      "create procedure commits(x int) language plpgsql as $$ begin insert into called values (x); commit; insert into called values (x + 1); end $$",
    );
    const [ctx, cancel] = withTimeout(background(), 10_000);
    try {
      await query(ctx, p, "call commits(1)");
      await query(ctx, p, "call commits($1)", [10]);
      await query(ctx, p, "do $$ begin insert into called values (20); commit; end $$");
      await query(ctx, p, "/* a comment */ CALL commits(30)");
    } finally {
      cancel();
    }
    const { rows } = await query<{ n: number }>(background(), p, "select n from called order by n");
    assert.deepEqual(
      rows.map((r) => r.n),
      [1, 2, 10, 11, 20, 30, 31],
    );
    // An upsert's DO UPDATE is no DO block: it keeps the server deadline.
    await query(background(), p, "create table upserted (k int primary key, v int)");
    const [timed, cancelTimed] = withTimeout(background(), 10_000);
    const seen = await query<{ t: string }>(
      timed,
      p,
      "insert into upserted values (1, 1) on conflict (k) do update set v = 2 returning current_setting('statement_timeout') as t",
    );
    cancelTimed();
    assert.notEqual(seen.rows[0]!.t, "0", "statement_timeout of an upsert under a deadline");
    await p.end();
  });

  it("LOCK TABLE and DECLARE CURSOR outside a transaction fail under a deadline as without one (25P01)", async () => {
    const p = pool(1);
    const texts = recordTexts(p);
    await query(background(), p, "create table locked (x int)");
    const [ctx, cancel] = withTimeout(background(), 10_000);
    try {
      for (const [text, values] of [
        ["lock table locked"],
        ["/* a comment */ LOCK locked in share mode"],
        ["declare c cursor for select 1"],
        ["declare c cursor for select $1::int", [1]],
      ] as [string, unknown[]?][]) {
        await assert.rejects(query(ctx, p, text, values), (e: { code?: string }) => {
          assert.equal(e.code, "25P01", `${text} outside a transaction: code`);
          return true;
        });
      }
      // Inside a transaction both run, and keep the server deadline.
      const client = await p.connect();
      try {
        await query(background(), client, "BEGIN");
        for (const text of ["lock table locked", "declare c cursor for select 1"]) {
          await query(ctx, client, text);
          const sent = texts.at(-1)!;
          assert.ok(
            sent.startsWith("SET LOCAL statement_timeout = ") && sent.endsWith(text),
            `in a transaction, sent ${JSON.stringify(sent)}, want the prefix and ${JSON.stringify(text)}`,
          );
        }
        await query(background(), client, "ROLLBACK");
      } finally {
        client.release();
      }
    } finally {
      cancel();
    }
    await p.end();
  });

  it("an error's position points into the caller's text under a deadline as without one", async () => {
    const p = pool(1);
    // A function whose body fails only when called: its error has an internalPosition, in its body.
    const body = `select 1 /* ${"x".repeat(60)} */ frm t`;
    await query(
      background(),
      p,
      `set check_function_bodies = off; create function broken() returns int language sql as '${body}'`,
    );
    const cases: [string, unknown[]?][] = [
      ["select 1 frm t"],
      ["select 1; select 2 frm t"],
      ["select no_such_column"],
      [`select ${"1 + ".repeat(40)}1 frm t`],
      ["select $1::int frm t", [1]],
      ["select 1, broken()"],
    ];
    const fields = (e: { code?: string; position?: string; internalPosition?: string }) => ({
      code: e.code,
      position: e.position,
      internalPosition: e.internalPosition,
    });
    for (const [text, values] of cases) {
      const want = await query(background(), p, text, values).then(
        () => assert.fail(`${text} without a deadline: resolved, want an error`),
        fields,
      );
      assert.ok(want.position !== undefined || want.internalPosition !== undefined, text);
      for (const ms of [10_000, 1_000_000_000]) {
        const [ctx, cancel] = withTimeout(background(), ms);
        const got = await query(ctx, p, text, values).then(
          () => assert.fail(`${text} under a deadline: resolved, want an error`),
          fields,
        );
        cancel();
        assert.deepEqual(got, want, `${text} under a ${ms} ms deadline`);
      }
    }
    await p.end();
  });

  it("after a query that ended near its deadline, clears a statement timeout the server may carry over", async () => {
    // PostgreSQL can carry a statement_timeout that fired at a statement's very
    // end over to the connection's next command, another caller's; taproot
    // sends an empty query of its own first when the deadline is that near.
    const p = pool(1);
    const texts = recordTexts(p);
    const [far, cancelFar] = withTimeout(background(), 60_000);
    await query(far, p, "select 1 as far");
    cancelFar();
    await p.query("select 1");
    assert.ok(!texts.includes(""), `far from the deadline, sent ${JSON.stringify(texts)}`);
    const near = await nearDeadlineRuns(texts, async (ctx) => {
      await query(ctx, p, "select 1 as near");
      await p.query("select 2 as next_caller");
    });
    const timed = near.findIndex((text) => text.includes("as near"));
    const next = near.findIndex((text) => text.includes("next_caller"));
    assert.ok(timed >= 0 && next > timed, `sent ${JSON.stringify(near)}`);
    assert.deepEqual(near.slice(timed + 1, next), [""], "between the query and the next caller");
    // On a client the caller holds, the empty query is queued before the caller's next one.
    const client = await p.connect();
    try {
      const held = await nearDeadlineRuns(texts, async (ctx) => {
        await query(ctx, client, "select 1 as near");
        await client.query("select 2 as next_caller");
      });
      const at = held.findIndex((text) => text.includes("as near"));
      assert.deepEqual(held.slice(at + 1), ["", "select 2 as next_caller"]);
    } finally {
      client.release();
    }
    await p.end();
  });

  it("multi-statement text keeps node-postgres's array of results", async () => {
    const p = pool(1);
    const [ctx, cancel] = withTimeout(background(), 10_000);
    const got = (await query(
      ctx,
      p,
      "select 1 as a; select 2 as b",
    )) as unknown as pg.QueryResult[];
    assert.ok(Array.isArray(got), "want an array of two results");
    assert.deepEqual(
      got.map((r) => r.rows),
      [[{ a: 1 }], [{ b: 2 }]],
    );
    cancel();
    await p.end();
  });
});

describe("bad input", () => {
  it("names the function and the fix", async () => {
    const p = pool(1);
    const cases: [unknown[], RegExp][] = [
      [
        [undefined, p, "select 1"],
        /^query\(ctx, db, text, values\): ctx is undefined; pass background\(\)/,
      ],
      [[null, p, "select 1"], /ctx is null; pass background\(\)/],
      [[{}, p, "select 1"], /ctx must be a Context, got an object/],
      [
        [background(), undefined, "select 1"],
        /db must be a pg Pool, PoolClient or Client, got undefined/,
      ],
      [
        [background(), { query() {} }, "select 1"],
        /db must be a pg Pool, PoolClient or Client, got an object/,
      ],
      [
        [background(), "postgres://x", "select 1"],
        /db must be a pg Pool, PoolClient or Client, got "postgres:\/\/x"/,
      ],
      [[background(), p, 42], /text must be a string of SQL, got 42 \(number\)/],
      [[background(), p, { text: "select 1" }], /pass the SQL and its values separately/],
      [
        [background(), p, "select $1", 5],
        /values must be an array of parameters .* got 5 \(number\)/,
      ],
      [[background(), p, "select $1", { a: 1 }], /values must be an array/],
    ];
    for (const [args, want] of cases) {
      assert.throws(
        () => (query as (...a: unknown[]) => unknown)(...args),
        (e: Error) => e instanceof TypeError && want.test(e.message),
        `query(${args.map(String).join(", ")}) should throw a TypeError matching ${want}`,
      );
    }
    await p.end();
    assert.throws(
      () => query(background(), p, "select 1"),
      /query\(ctx, db, text, values\): the pool was ended \(pool\.end\(\) was called\)/,
    );
    const c = new pg.Client({ connectionString: fixture.db.url });
    await c.connect();
    await c.end();
    assert.throws(() => query(background(), c, "select 1"), /the client was ended/);
  });
});

describe("resources", () => {
  it("leaves no socket or timer behind after canceled and finished queries", async () => {
    await delay(50);
    const before = count();
    const p = pool(2);
    for (let i = 0; i < 20; i++) {
      const [ctx, cancel] = withTimeout(background(), 10_000);
      const running = query(ctx, p, "select pg_sleep(0.05)");
      if (i % 2 === 0) setTimeout(cancel, 5);
      await running.catch(() => {});
      cancel();
    }
    await p.end();
    // Sockets close in the ticks after end(); cancel connections after the server's close.
    await pollUntil("resources back to normal", 3000, async () => {
      const now = count();
      return now.TCPSocketWrap <= before.TCPSocketWrap && now.Timeout <= before.Timeout;
    }).catch(() => {
      assert.deepEqual(count(), before, "active resources after the pool ended");
    });
  });
});

function count(): { TCPSocketWrap: number; Timeout: number } {
  const info = process.getActiveResourcesInfo();
  return {
    TCPSocketWrap: info.filter((r) => r === "TCPSocketWrap").length,
    Timeout: info.filter((r) => r === "Timeout").length,
  };
}
