import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");

test("examples/worker.ts polls, gives up on the slow job, and exits cleanly on SIGINT", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", join(root, "examples/worker.ts")], {
    cwd: root,
    env: { ...process.env, POLL_MS: "50" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  // Wait until the queue is drained, then ask it to stop as Ctrl-C would.
  const deadline = Date.now() + 20_000;
  while (!out.includes("queue empty") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill("SIGINT");
  const code = await exited;
  assert.equal(code, 0, `exit code ${code}, want 0; output:\n${out}`);
  assert.match(out, /send welcome mail: done/);
  assert.match(out, /slow job: gave up \(context deadline exceeded\)/);
  assert.match(out, /poller stopping: Error: received SIGINT/);
  assert.match(out, /stopped cleanly; pending timers: 0/);
});
