// The server enforces the deadline: a query stops at it even when the Node
// process that sent it is killed with SIGKILL mid-query (nothing of ours runs
// then; a dropped socket alone does not stop a running backend).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { delay } from "../helpers.js";
import { useTestDatabase } from "./database.js";

const CHILD = fileURLToPath(new URL("./fixtures/query-then-wait.ts", import.meta.url));

const fixture = useTestDatabase({ max: 1 });

async function isActive(pid: number): Promise<boolean> {
  const { rows } = await fixture.admin.query(
    "select 1 from pg_stat_activity where pid = $1 and state = 'active'",
    [pid],
  );
  return rows.length > 0;
}

/** killedMidQuery starts the child, waits until its query runs, SIGKILLs it and returns the backend's pid. */
async function killedMidQuery(deadlineMs: number): Promise<{ pid: number; killedAt: number }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, fixture.db.url, String(deadlineMs)],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) =>
      reject(new Error(`child exited with ${code} before printing its pid`)),
    );
  });
  const pid = Number(line);
  const start = performance.now();
  while (!(await isActive(pid))) {
    assert.ok(performance.now() - start < 10_000, "the child's query never became active");
    await delay(10);
  }
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
  return { pid, killedAt: performance.now() };
}

describe("deadline enforced by the server", () => {
  it("a query stops at its deadline although the process was SIGKILLed mid-query", async () => {
    const { pid, killedAt } = await killedMidQuery(1500);
    let stoppedAfter = -1;
    while (performance.now() - killedAt < 15_000) {
      if (!(await isActive(pid))) {
        stoppedAfter = performance.now() - killedAt;
        break;
      }
      await delay(20);
    }
    assert.ok(
      stoppedAfter >= 0,
      `backend ${pid} still active 15 s after the kill, want stopped by its 1.5 s deadline`,
    );
  });

  it("without a deadline the same kill leaves the backend running (what the deadline buys)", async () => {
    const { pid } = await killedMidQuery(0);
    await delay(2500);
    const still = await isActive(pid);
    await fixture.admin.query("select pg_terminate_backend($1)", [pid]);
    assert.equal(
      still,
      true,
      "backend of a killed client without deadline: active = false, want true (else the test above proves nothing)",
    );
  });
});
