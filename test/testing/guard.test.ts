import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as context from "../../src/index.js";
import { hooks } from "../../src/debug-hooks.js";
import { collectGarbage } from "../../src/testing/gc.js";
import {
  LOST_CANCEL,
  TOO_MANY_CHILDREN,
  debugEnabled,
  installGuard,
} from "../../src/testing/index.js";
import type { TaprootWarning } from "../../src/testing/index.js";
import { fetchHandler } from "../../src/fetch/index.js";
import { serve } from "../../src/node/index.js";
import { deferred, until } from "../helpers.js";
import { get } from "../node/helpers.js";

const bg = context.background();

/** Collects garbage until `until()` holds or 5 s pass: finalizers run a turn or two after the collection. */
async function collectUntil(until: () => boolean): Promise<void> {
  const end = Date.now() + 5_000;
  while (!until() && Date.now() < end) {
    await collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// A guard installed from the environment (TAPROOT_DEBUG=1) would see these tests' contexts too.
before(() => installGuard({ enabled: false }));

/** Runs a module in a fresh Node with env, and resolves with its stderr. */
function runNode(env: Record<string, string>, code: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", code],
      {
        cwd: fileURLToPath(new URL("../..", import.meta.url)),
        env: { ...process.env, TAPROOT_DEBUG: "", NODE_ENV: "", ...env },
        timeout: 60_000,
      },
      (err, _stdout, stderr) => (err ? reject(err) : resolve(stderr)),
    );
  });
}

const FANOUT = `
import * as context from "./src/index.ts";
import "./src/testing/index.ts";
const [parent, cancel] = context.withCancel(context.background());
for (let i = 0; i < 3; i++) context.withCancel(parent);
cancel();
`;

describe("TAPROOT_DEBUG", () => {
  test("=1: importing taproot/testing installs the guard, TAPROOT_CHILD_LIMIT sets its limit", async () => {
    const stderr = await runNode(
      { TAPROOT_DEBUG: "1", TAPROOT_CHILD_LIMIT: "2", NODE_ENV: "production" },
      FANOUT,
    );
    assert.match(
      stderr,
      /\[TAPROOT_TOO_MANY_CHILDREN\] TaprootWarning: context\.Background\.WithCancel has 3 live children \(more than 2\)/,
    );
  });

  test("unset: importing taproot/testing installs nothing", async () => {
    const stderr = await runNode({ TAPROOT_CHILD_LIMIT: "2" }, FANOUT);
    assert.doesNotMatch(stderr, /TAPROOT_TOO_MANY_CHILDREN/);
  });
});

describe("debugEnabled", () => {
  const cases: [Record<string, string | undefined>, boolean][] = [
    [{}, true],
    [{ NODE_ENV: "development" }, true],
    [{ NODE_ENV: "test" }, true],
    [{ NODE_ENV: "production" }, false],
    [{ NODE_ENV: "production", TAPROOT_DEBUG: "1" }, true],
    [{ NODE_ENV: "production", TAPROOT_DEBUG: "true" }, true],
    [{ NODE_ENV: "production", TAPROOT_DEBUG: " ON " }, true],
    [{ TAPROOT_DEBUG: "0" }, false],
    [{ TAPROOT_DEBUG: "off" }, false],
    [{ NODE_ENV: "development", TAPROOT_DEBUG: "no" }, false],
    [{ NODE_ENV: "production", TAPROOT_DEBUG: "" }, false],
  ];
  for (const [env, want] of cases) {
    test(`is ${want} for ${JSON.stringify(env)}`, () => {
      assert.equal(
        debugEnabled(env),
        want,
        `debugEnabled(${JSON.stringify(env)}) = ${!want}, want ${want}`,
      );
    });
  }
});

describe("installGuard", () => {
  test("installs nothing when not enabled, so the core keeps its fast path", () => {
    const guard = installGuard({ enabled: false });
    assert.equal(guard.enabled, false);
    assert.equal(hooks, null);
    guard.uninstall();
  });

  test("warns once, with a code and the parent's creation site, when a context passes childLimit", () => {
    const warnings: TaprootWarning[] = [];
    using _guard = installGuard({
      enabled: true,
      childLimit: 3,
      onWarning: (w) => warnings.push(w),
    });
    const [parent, cancelParent] = context.withCancel(bg);
    const cancels: (() => void)[] = [];
    try {
      for (let i = 0; i < 6; i++) cancels.push(context.withCancel(parent)[1]);
      assert.equal(warnings.length, 1, `got ${warnings.length} warnings, want 1`);
      const w = warnings[0]!;
      assert.equal(w.code, TOO_MANY_CHILDREN);
      assert.equal(w.name, "TaprootWarning");
      assert.equal(w.context, parent);
      assert.match(
        w.message,
        /^context\.Background\.WithCancel has 4 live children \(more than 3\)/,
      );
      assert.match(w.message, /Parent created at:\n\s+at .*guard\.test\.ts:\d+/);
      assert.match(w.message, /Latest child created at:\n\s+at .*guard\.test\.ts:\d+/);
      assert.match(w.message, /Cancel each child when its work ends/);
    } finally {
      for (const c of cancels) c();
      cancelParent();
    }
  });

  test("emits a process warning by default", async () => {
    const got = new Promise<Error>((resolve) => process.once("warning", resolve));
    const guard = installGuard({ enabled: true, childLimit: 1, lostCancel: false });
    const [parent, cancelParent] = context.withCancel(bg);
    const [, c1] = context.withCancel(parent);
    const [, c2] = context.withCancel(parent);
    try {
      const w = (await got) as TaprootWarning;
      assert.equal(w.code, TOO_MANY_CHILDREN);
    } finally {
      c1();
      c2();
      cancelParent();
      guard.uninstall();
    }
    assert.equal(hooks, null);
  });

  test("warns when a cancel function is garbage-collected while its deadline timer is pending", async () => {
    const warnings: TaprootWarning[] = [];
    const guard = installGuard({ enabled: true, onWarning: (w) => warnings.push(w) });
    const [parent, cancelParent] = context.withCancel(bg);
    try {
      (function forgetful() {
        context.withTimeout(parent, 60_000); // the cancel function is dropped here
      })();
      await collectUntil(() => warnings.length > 0);
      assert.equal(warnings.length, 1, `got ${warnings.length} warnings, want 1`);
      const w = warnings[0]!;
      assert.equal(w.code, LOST_CANCEL);
      assert.match(
        w.message,
        /^the cancel function of context\.Background\.WithCancel\.WithDeadline\(/,
      );
      assert.match(w.message, /its deadline timer is still pending/);
      assert.match(w.message, /Created at:\n\s+at forgetful .*guard\.test\.ts:\d+/);
    } finally {
      cancelParent();
      guard.uninstall();
    }
  });

  test("warns when a lost cancel leaves a context attached to a live parent", async () => {
    const warnings: TaprootWarning[] = [];
    const guard = installGuard({ enabled: true, onWarning: (w) => warnings.push(w) });
    const [parent, cancelParent] = context.withCancel(bg);
    try {
      (() => void context.withCancel(context.withValue(parent, "k", 1)))();
      await collectUntil(() => warnings.length > 0);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0]!.message,
        /still attached to its live parent context\.Background\.WithCancel\./,
      );
    } finally {
      cancelParent();
      guard.uninstall();
    }
  });

  test("stays quiet for cancels that were called, contexts already done, and contexts that hold nothing", async () => {
    const warnings: TaprootWarning[] = [];
    const guard = installGuard({ enabled: true, onWarning: (w) => warnings.push(w) });
    const [parent, cancelParent] = context.withCancel(bg);
    try {
      (() => {
        const [, cancel] = context.withTimeout(parent, 60_000);
        cancel();
        context.withTimeout(context.withCancel(parent)[0], 60_000); // parent's child...
        context.withCancel(bg); // holds nothing: no timer, no live parent
      })();
      cancelParent(); // ...done by its parent before the collection
      // A canary that must be collected tells that the collection really ran.
      let canary = false;
      const registry = new FinalizationRegistry(() => (canary = true));
      (() => registry.register({}, 0))();
      await collectUntil(() => canary);
      assert.equal(canary, true, "no garbage collection happened");
      await collectGarbage();
      assert.deepEqual(
        warnings.map((w) => w.message),
        [],
      );
    } finally {
      cancelParent();
      guard.uninstall();
    }
  });

  test("stays quiet for request contexts in flight, which have no cancel function of the user's", async () => {
    const warnings: TaprootWarning[] = [];
    const guard = installGuard({ enabled: true, onWarning: (w) => warnings.push(w) });
    const release = deferred();
    const seen: context.Context[] = [];
    const app = serve(
      async (ctx, _req, res) => {
        seen.push(ctx);
        await release.promise;
        res.end(String(ctx.err()));
      },
      { timeout: 60_000 },
    );
    const fetchInFlight = fetchHandler(
      async (ctx) => {
        seen.push(ctx);
        await release.promise;
        return new Response(String(ctx.err()));
      },
      { timeout: 60_000 },
    )(new Request("http://localhost/"));
    try {
      const { port } = await app.listen(0, "127.0.0.1");
      const answer = get(port, "/");
      await until(() => seen.length === 2, 5_000, "both requests to reach their handlers");
      // Time enough for a dropped cancel function to be collected and reported.
      for (let round = 0; round < 10; round++) {
        await collectGarbage();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      release.resolve();
      assert.equal((await answer).body, "null");
      assert.equal(await (await fetchInFlight).text(), "null");
      assert.deepEqual(
        warnings.map((w) => w.message.split("\n")[0]),
        [],
        "warnings for request contexts still in flight",
      );
    } finally {
      release.resolve();
      await app.shutdown();
      guard.uninstall();
    }
  });

  test("uninstall restores the core's fast path; a second install replaces the first", () => {
    const a = installGuard({ enabled: true, onWarning() {} });
    const b = installGuard({ enabled: true, onWarning() {} });
    assert.equal(a.enabled, false);
    assert.equal(b.enabled, true);
    b.uninstall();
    assert.equal(hooks, null);
  });

  test("rejects options that are no object, and flags or an onWarning of the wrong type", () => {
    for (const [options, message] of [
      [5, /^installGuard\(options\): options must be an object, got 5 \(number\)/],
      ["x", /^installGuard\(options\): options must be an object/],
      [
        { enabled: "yes" },
        /^installGuard\(options\): options\.enabled must be true or false, got "yes"/,
      ],
      [{ stacks: "no" }, /^installGuard\(options\): options\.stacks must be true or false/],
      [{ lostCancel: 0 }, /^installGuard\(options\): options\.lostCancel must be true or false/],
      [{ onWarning: "log" }, /^installGuard\(options\): options\.onWarning must be a function/],
    ] as const) {
      assert.throws(
        () => installGuard(options as never),
        { name: "TypeError", message },
        JSON.stringify(options),
      );
      assert.equal(hooks, null, `${JSON.stringify(options)} installed hooks`);
    }
  });

  test("rejects a bad childLimit with a TypeError naming the option and the default", () => {
    assert.throws(() => installGuard({ enabled: true, childLimit: 0 }), {
      name: "TypeError",
      message:
        /^installGuard\(options\): options\.childLimit must be a number of at least 1, got 0; the default is 10000/,
    });
    assert.equal(hooks, null);
  });
});
