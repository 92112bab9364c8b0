import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { createTestDatabase, type TestDatabase } from "../pg/database.js";
import { get } from "./helpers.js";

const example = fileURLToPath(new URL("../../examples/server.ts", import.meta.url));

describe("examples/server.ts", () => {
  // A database of its own: jobs another run left in a shared one would be polled first.
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it("serves /, polls, drains on SIGTERM and exits 0", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", example], {
      env: { ...process.env, DATABASE_URL: db.url, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on("data", (chunk: string) => {
        out += chunk;
        const m = /listening on http:\/\/localhost:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", () => reject(new Error(`example exited early:\n${out}`)));
    });
    try {
      const r = await get(port, "/");
      assert.equal(r.status, 200);
      assert.equal(r.body, "success\n");
      await new Promise((resolve) => {
        const wait = (): unknown =>
          /poll: /.test(out) ? resolve(undefined) : setTimeout(wait, 20);
        wait();
      });
      const inflight = get(port, "/");
      await new Promise((resolve) => setTimeout(resolve, 50));
      child.kill("SIGTERM");
      assert.equal((await inflight).status, 200, "the request in flight is drained");
      assert.equal(await exited, 0, `exit code; output:\n${out}`);
    } finally {
      clearTimeout(killer);
      child.kill("SIGKILL");
    }
    assert.match(out, /GET \/: 200 in \d+ ms/);
    assert.match(out, /poll: processing receipt for request 1/);
    assert.match(out, /shutting down \(received SIGTERM\)/);
    assert.match(out, /stopped: worker done, 1 request\(s\) drained, 0 canceled/);
  });
});
