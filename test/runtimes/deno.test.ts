/**
 * Deno (the `deno` devDependency): the core's test suite under `deno test`
 * (Deno runs node:test files), taproot/node's disconnect-and-shutdown check,
 * fetchHandler under Deno.serve, and deadline timers that never keep a
 * Deno process alive.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";

import {
  NODE_CHECK,
  NODE_TOOLING,
  assertExitsWhileTimerPending,
  assertFetchHandlerCheck,
  binary,
  fixtures,
  lastJson,
  run,
} from "./runtime.js";

const deno = binary("deno");

/**
 * The three core tests that spawn `process.execPath` with Node's CLI flags
 * (`--import tsx -e`): under Deno, process.execPath is deno. What the first
 * two check is checked on Deno by the deadline-exit tests below; the third
 * (a sub-millisecond ticker must not block the event loop) runs in a child
 * process only so that a busy loop cannot hang the suite.
 */
const NODE_CLI = new Set([
  "withDeadline ... deadline timers never keep the process alive",
  "withDeadline ... sleep keeps the process alive, like setTimeout",
  "ticker ... a period below 1 ms ticks every millisecond and leaves the event loop free",
]);

test("the core's test suite passes under deno test, but for the three tests that spawn Node's CLI", async () => {
  const files = readdirSync(new URL("../", import.meta.url))
    .filter((f) => f.endsWith(".test.ts") && !NODE_TOOLING.has(f))
    .map((f) => `test/${f}`);
  const r = await run(
    deno,
    ["test", "-A", "--no-check", "--unstable-sloppy-imports", ...files],
    240_000,
  );
  const summary = /(ok|FAILED) \| (\d+) passed \((\d+) steps\) \| (\d+) failed/.exec(r.stdout);
  assert.ok(
    summary,
    `no test summary from deno test (exit ${r.code}); stderr: ${r.stderr.slice(-2000)}`,
  );
  const failed = new Set([...r.stdout.matchAll(/^(.+?) => \S+$/gm)].map((m) => m[1]!.trim()));
  const unexpected = [...failed].filter((f) => !NODE_CLI.has(f));
  assert.deepEqual(
    unexpected,
    [],
    `tests failing under Deno, want only the Node-CLI ones:\n${r.stdout.slice(-4000)}`,
  );
  assert.ok(
    Number(summary[3]) > 200,
    `deno ran ${summary[3]} test steps, want the whole suite (> 200)`,
  );
});

test("deadline timers never keep a Deno process alive", async () => {
  const start = Date.now();
  const r = await run(deno, ["run", "-A", `${fixtures}deadline-exit.mjs`], 30_000);
  assertExitsWhileTimerPending(r, start);
});

test("deadline timers on number timers (Deno 2.0's web timers) are unref'd with Deno.unrefTimer", async () => {
  const r = await run(deno, ["run", "-A", `${fixtures}deadline-exit-number-timers.mjs`], 20_000);
  assert.equal(
    r.stdout.trim(),
    "started",
    `stdout = ${JSON.stringify(r.stdout)}, stderr = ${r.stderr}`,
  );
  assert.equal(
    r.code,
    0,
    `exit code = ${r.code}, want 0: the process waited for its deadline timer`,
  );
});

test("taproot/node: a disconnect cancels the request, shutdown drains and then cancels, as on Node", async () => {
  const r = await run(deno, ["run", "-A", `${fixtures}node-check.mjs`], 30_000);
  assert.deepEqual(lastJson(r), NODE_CHECK, `stderr: ${r.stderr}`);
});

test("fetchHandler under Deno.serve: deadline header, answer, client abort", async () => {
  const r = await run(deno, ["run", "-A", `${fixtures}fetch-handler-check.mjs`], 30_000);
  assertFetchHandlerCheck(r);
  // Deno.serve's legacy abort-on-success notice (docs/runtimes.md): printed, and harmless to taproot.
  assert.match(r.stderr + r.stdout, /request\.signal aborts on successful responses/);
});

test("the same taproot/node check on Node reads the same (the reference for both runtimes)", async () => {
  const r = await run(process.execPath, [`${fixtures}node-check.mjs`], 30_000);
  assert.deepEqual(lastJson(r), NODE_CHECK, `stderr: ${r.stderr}`);
});
