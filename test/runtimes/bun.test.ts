/**
 * Bun (the `bun` devDependency): the core's test suite under `bun test`
 * (Bun runs node:test files with its own runner), taproot/node's
 * disconnect-and-shutdown check, fetchHandler under Bun.serve, and deadline
 * timers that never keep a Bun process alive.
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

const bun = binary("bun");

/**
 * Core tests that count pending timers with process.getActiveResourcesInfo(),
 * which lists no timers on Bun: they fail on the check that makes sure they
 * can see a timer at all ("test is broken"), not on taproot.
 */
const NO_RESOURCE_INFO = new Set([
  "withDeadline > the timer is released as soon as the context is canceled",
  "sleep > leaves no pending timer once it settles",
]);

test("the core's test suite passes under bun test, but for Node-only introspection", async () => {
  const files = readdirSync(new URL("../", import.meta.url))
    .filter((f) => f.endsWith(".test.ts") && !NODE_TOOLING.has(f))
    .map((f) => `./test/${f}`);
  const r = await run(bun, ["test", ...files], 240_000);
  const out = r.stdout + r.stderr;
  const pass = Number(/^\s*(\d+) pass$/m.exec(out)?.[1] ?? NaN);
  assert.ok(
    pass > 200,
    `bun test passed ${pass} tests, want the whole suite (> 200):\n${out.slice(-3000)}`,
  );
  const failed = new Set(
    [...out.matchAll(/^\(fail\) (.+?)(?: \[[\d.]+m?s\])?$/gm)].map((m) => m[1]!),
  );
  assert.deepEqual(
    [...failed].filter((f) => !NO_RESOURCE_INFO.has(f)),
    [],
    `tests failing under Bun, want only the ones that need getActiveResourcesInfo:\n${out.slice(-3000)}`,
  );
  // The leak tests force a garbage collection through node:v8's --expose-gc,
  // which Bun ignores: they report "gc is not defined" between tests.
  const errors = [...out.matchAll(/# Unhandled error between tests\n-+\n(.+)/g)].map((m) => m[1]!);
  assert.deepEqual(
    errors.filter((e) => !e.startsWith("ReferenceError: gc is not defined")),
    [],
    `errors between tests under Bun, want only the gc ones:\n${out.slice(-3000)}`,
  );
});

test("deadline timers never keep a Bun process alive", async () => {
  const start = Date.now();
  const r = await run(bun, [`${fixtures}deadline-exit.mjs`], 30_000);
  assertExitsWhileTimerPending(r, start);
});

test("taproot/node: a disconnect cancels the request, shutdown drains and then cancels, as on Node", async () => {
  const r = await run(bun, [`${fixtures}node-check.mjs`], 30_000);
  assert.deepEqual(lastJson(r), NODE_CHECK, `stderr: ${r.stderr}`);
});

test("fetchHandler under Bun.serve: deadline header, answer, client abort", async () => {
  const r = await run(bun, [`${fixtures}fetch-handler-check.mjs`], 30_000);
  assertFetchHandlerCheck(r);
});
