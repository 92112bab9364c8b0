import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { delay } from "../helpers.js";
import { useTestDatabase } from "./database.js";

const example = fileURLToPath(new URL("../../examples/server.ts", import.meta.url));

const fixture = useTestDatabase({ max: 2, application_name: "admin" });

/** A running examples/server.ts: its port, its output so far, and its exit. */
interface Server {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

async function start(env: Record<string, string>): Promise<Server> {
  const child = spawn(process.execPath, ["--import", "tsx", example], {
    env: { ...process.env, DATABASE_URL: fixture.db.url, PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "listening" line in 30 s:\n${out}`)),
      30_000,
    );
    const check = (): void => {
      const m = /listening on http:\/\/localhost:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`examples/server.ts exited (${code}) before listening:\n${out}`));
    });
  });
  return { child, port, output: () => out, exited };
}

/** stopWith sends `signal` and waits (bounded) for the exit code. */
async function stopWith(server: Server, signal: NodeJS.Signals): Promise<number | null> {
  server.child.kill(signal);
  const killer = setTimeout(() => server.child.kill("SIGKILL"), 30_000);
  try {
    return await server.exited;
  } finally {
    clearTimeout(killer);
  }
}

async function count(sql: string): Promise<number> {
  const { rows } = await fixture.admin.query<{ n: number }>(`select (${sql})::int as n`);
  return rows[0]!.n;
}

describe("examples/server.ts on PostgreSQL", () => {
  it("does every one of 1,000 jobs exactly once across SIGTERMs at random moments and restarts", async (t) => {
    const env = { POLL_MS: "100", WORKERS: "2", JOB_MS: "5" };
    let server = await start(env);
    await fixture.admin.query(
      "insert into jobs (payload) select 'job ' || g from generate_series(1, 1000) g",
    );
    const budget = Date.now() + 150_000;
    let restarts = 0;
    try {
      // Interrupt the worker at random moments while jobs remain; a short
      // grace on some rounds makes the job in flight roll back instead.
      while (
        (await count("select count(*) from jobs where done_at is null")) > 0 &&
        Date.now() < budget
      ) {
        if (restarts < 6) {
          await delay(100 + Math.random() * 1_000);
          const code = await stopWith(server, "SIGTERM");
          assert.equal(
            code,
            0,
            `exit code after SIGTERM; output:\n${server.output().slice(-2_000)}`,
          );
          restarts++;
          server = await start({ ...env, GRACE_MS: restarts % 2 === 0 ? "0" : "5000" });
        } else {
          await delay(200);
        }
      }
      assert.equal(await stopWith(server, "SIGTERM"), 0);
    } finally {
      server.child.kill("SIGKILL");
    }
    const queued = await count("select count(*) from jobs where done_at is null");
    const completions = await count("select count(*) from job_completions");
    const distinct = await count("select count(distinct job_id) from job_completions");
    const twice = await count(
      "select count(*) from (select job_id from job_completions group by job_id having count(*) > 1) d",
    );
    t.diagnostic(`${restarts} SIGTERMs and restarts; ${completions} completions`);
    assert.ok(restarts >= 2, `only ${restarts} restarts happened before the queue drained`);
    assert.equal(queued, 0, "jobs still queued (lost)");
    assert.equal(twice, 0, "jobs done more than once");
    assert.equal(completions, 1_000, "completions");
    assert.equal(distinct, 1_000, "distinct jobs completed");
    assert.equal(
      await count(
        "select count(*) from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'",
      ),
      0,
      "sessions left idle in transaction",
    );
  });

  it("enqueues a receipt for exactly the requests it answered, whenever clients hang up", async () => {
    const server = await start({ QUERY_MS: "50", POLL_MS: "600000" });
    try {
      const jobsBefore = await count("select count(*) from jobs");
      // Clients that hang up around the moment the work ends: before, during
      // and after its INSERT and COMMIT. Bounded: 60 requests, a few at once.
      for (let round = 0; round < 15; round++) {
        await Promise.all(
          [0, 1, 2, 3].map(async (i) => {
            const req = request({ port: server.port, path: `/r${round}-${i}` });
            req.on("error", () => {}); // we hang up ourselves
            req.end();
            await delay(40 + round + i * 4);
            req.destroy();
          }),
        );
      }
      await delay(500); // the last handlers log their outcome
      const answered = server.output().match(/: 200 in \d+ ms/g)?.length ?? 0;
      const left = server.output().match(/nothing was enqueued/g)?.length ?? 0;
      const enqueued = (await count("select count(*) from jobs")) - jobsBefore;
      assert.equal(
        enqueued,
        answered,
        `${enqueued} receipts for ${answered} answered requests (${left} left)`,
      );
      assert.ok(left > 0, "no client left before its work was done (the test needs both kinds)");
      assert.equal(await stopWith(server, "SIGTERM"), 0);
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("cancels the handler's query on the server when the client disconnects, and logs it", async () => {
    const server = await start({ QUERY_MS: "20000", POLL_MS: "60000" });
    try {
      const jobsBefore = await count("select count(*) from jobs");
      const req = request({ port: server.port, path: "/" });
      req.on("error", () => {}); // we hang up ourselves
      req.end();
      const running =
        "select count(*) from pg_stat_activity where state = 'active' and query like '%pg_sleep($1)%' and pid <> pg_backend_pid()";
      const end = Date.now() + 15_000;
      while ((await count(running)) === 0 && Date.now() < end) await delay(20);
      assert.equal(await count(running), 1, "the handler's query never showed up as active");
      req.destroy(); // the client leaves
      const gone = Date.now() + 5_000;
      while ((await count(running)) > 0 && Date.now() < gone) await delay(20);
      assert.equal(
        await count(running),
        0,
        "the backend still runs pg_sleep(20) 5 s after the client left",
      );
      while (
        !/client left after \d+ ms; its query was canceled on the server/.test(server.output()) &&
        Date.now() < gone
      ) {
        await delay(20);
      }
      assert.match(
        server.output(),
        /GET \/: client left after \d+ ms; its query was canceled on the server and nothing was enqueued/,
      );
      assert.equal(
        await count("select count(*) from jobs"),
        jobsBefore,
        "a job was enqueued for an abandoned request",
      );
      assert.equal(await stopWith(server, "SIGTERM"), 0);
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});
