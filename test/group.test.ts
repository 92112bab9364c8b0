import { test } from "node:test";
import assert from "node:assert/strict";
import * as context from "../src/index.js";
import { flush } from "./helpers.js";

test("wait resolves once every task has settled, then cancels the group's context", async () => {
  const g = context.group(context.background());
  const done: number[] = [];
  for (const ms of [30, 10, 20]) {
    g.go(async (ctx) => {
      await context.sleep(ctx, ms);
      done.push(ms);
    });
  }
  assert.equal(g.ctx.err(), null, "group ctx done before wait");
  await g.wait();
  assert.deepEqual(done.sort(), [10, 20, 30]);
  assert.equal(
    g.ctx.err(),
    context.Canceled,
    `g.ctx.err() = ${String(g.ctx.err())}, want Canceled`,
  );
});

test("the first failure cancels the other tasks with that error as the cause", async () => {
  const g = context.group(context.background());
  const boom = new Error("boom");
  let sawCancel: unknown = null;
  g.go(async (ctx) => {
    try {
      await context.sleep(ctx, 10_000);
    } catch (err) {
      sawCancel = context.cause(ctx);
      throw err;
    }
  });
  g.go(async () => {
    await flush();
    throw boom;
  });
  await assert.rejects(g.wait(), (err) => err === boom);
  assert.equal(sawCancel, boom, "the long task did not see the failure as its cause");
  assert.equal(context.cause(g.ctx), boom);
});

test("a synchronous throw counts as a failure", async () => {
  const g = context.group(context.background());
  const bad = new TypeError("sync");
  g.go(() => {
    throw bad;
  });
  await assert.rejects(g.wait(), (err) => err === bad);
});

test("limit bounds how many tasks run at once", async () => {
  const g = context.group(context.background(), { limit: 2 });
  let running = 0;
  let most = 0;
  for (let i = 0; i < 6; i++) {
    g.go(async (ctx) => {
      running++;
      most = Math.max(most, running);
      await context.sleep(ctx, 5);
      running--;
    });
  }
  await g.wait();
  assert.equal(most, 2, `at most ${most} tasks ran at once, want 2`);
});

test("canceling the parent cancels the group's tasks", async () => {
  const [parent, cancel] = context.withCancel(context.background());
  const g = context.group(parent);
  g.go((ctx) => context.sleep(ctx, 10_000));
  cancel();
  await assert.rejects(g.wait(), (err) => err === context.Canceled);
});

test("a failing task never causes an unhandled rejection, even without wait()", async () => {
  const seen: unknown[] = [];
  const onUnhandled = (err: unknown) => seen.push(err);
  process.on("unhandledRejection", onUnhandled);
  try {
    const g = context.group(context.background());
    g.go(async () => {
      throw new Error("nobody waits for me");
    });
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
  assert.deepEqual(seen, []);
});

test("await using cancels and awaits the tasks when the scope ends", async () => {
  let finished = false;
  let ctxAtEnd: context.Context | undefined;
  {
    await using g = context.group(context.background());
    ctxAtEnd = g.ctx;
    g.go(async (ctx) => {
      await context.sleep(ctx, 10_000).catch(() => {});
      finished = true;
    });
  }
  assert.equal(finished, true, "the scope ended before the task settled");
  assert.equal(ctxAtEnd?.err(), context.Canceled);
  assert.deepEqual(
    process.getActiveResourcesInfo().filter((r) => r === "Timeout"),
    [],
    "a timer survived the group",
  );
});

test("await using throws a failure that wait() never reported", async () => {
  const boom = new Error("lost");
  await assert.rejects(
    (async () => {
      await using g = context.group(context.background());
      g.go(async () => {
        throw boom;
      });
      await flush();
    })(),
    (err) => err === boom,
  );
});

test("bad options and tasks get errors that name the function", () => {
  assert.throws(
    () => context.group(context.background(), { limit: 0 }),
    /group\(parent, options\): options\.limit must be a positive integer/,
  );
  assert.throws(
    () => context.group(undefined as unknown as context.Context),
    /group\(parent, options\): parent is undefined; pass background\(\)/,
  );
  const g = context.group(context.background());
  assert.throws(() => g.go("task" as never), /group\.go\(task\): task must be a function/);
});

test("5,000 queued tasks that throw at once after a failure: no stack overflow, wait() rejects with the first", async () => {
  const seen: unknown[] = [];
  const onUnhandled = (err: unknown) => seen.push(err);
  process.on("unhandledRejection", onUnhandled);
  try {
    const g = context.group(context.background(), { limit: 4 });
    const first = new Error("first");
    let ran = 0;
    g.go(async () => {
      await flush();
      throw first;
    });
    for (let i = 0; i < 3; i++) g.go((ctx) => context.sleep(ctx, 10_000));
    for (let i = 0; i < 20_000; i++) {
      g.go((ctx) => {
        ran++;
        if (ctx.err()) throw ctx.err();
      });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      g.wait().then(
        () => "resolved",
        (err: unknown) => err,
      ),
      new Promise((r) => (timer = setTimeout(() => r("timeout"), 10_000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, first, `wait() settled with ${String(outcome)}, want the first failure`);
    assert.equal(ran, 20_000, `${ran} queued tasks ran, want 20000`);
    await flush();
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
  assert.deepEqual(seen, [], "unhandled rejections escaped");
});

test("queued tasks start in go() order, even when started from inside a task", async () => {
  const g = context.group(context.background(), { limit: 1 });
  const order: string[] = [];
  g.go(() => flush()); // holds the one slot, so the next three queue
  g.go(() => {
    order.push("a");
    g.go(() => void order.push("c"));
  });
  g.go(() => void order.push("b"));
  await g.wait();
  assert.deepEqual(order, ["a", "b", "c"]);
});

test("await using throws a failure a task raises while disposal stops it", async () => {
  const cleanup = new Error("cleanup failed");
  await assert.rejects(
    (async () => {
      await using g = context.group(context.background());
      g.go(async (ctx) => {
        await context.sleep(ctx, 10_000).catch(() => {});
        throw cleanup;
      });
      await flush();
    })(),
    (err) => err === cleanup,
  );
});

test("await using: a task rejecting with the disposal's own cancellation is no failure", async () => {
  {
    await using g = context.group(context.background(), { limit: 1 });
    g.go((ctx) => context.sleep(ctx, 10_000));
    g.go((ctx) => context.sleep(ctx, 10_000)); // queued: starts on a canceled ctx and rejects at once
  }
});

test("await using: a scope error and a task failure surface together as a SuppressedError", async () => {
  const body = new Error("body");
  const task = new Error("task");
  let caught: unknown;
  try {
    await using g = context.group(context.background());
    g.go(async (ctx) => {
      await context.sleep(ctx, 10_000).catch(() => {});
      throw task;
    });
    throw body;
  } catch (err) {
    caught = err;
  }
  const e = caught as { name?: unknown; error?: unknown; suppressed?: unknown };
  assert.ok(caught instanceof Error, `caught ${String(caught)}, want an Error`);
  assert.equal(e.name, "SuppressedError");
  assert.equal(e.error, task, "SuppressedError.error is not the task failure");
  assert.equal(e.suppressed, body, "SuppressedError.suppressed is not the scope's error");
});

test("await using after wait() reported the failure throws nothing more", async () => {
  const boom = new Error("boom");
  let fromWait: unknown;
  {
    await using g = context.group(context.background());
    g.go(async () => {
      throw boom;
    });
    fromWait = await g.wait().catch((err: unknown) => err);
  }
  assert.equal(fromWait, boom);
});

test("non-object options are refused with a TypeError naming group", () => {
  for (const bad of [4, "4", null, true]) {
    assert.throws(
      () => context.group(context.background(), bad as never),
      (err) =>
        err instanceof TypeError &&
        /^group\(parent, options\): options must be an object/.test(err.message),
      `group(background(), ${String(bad)}) did not throw the expected TypeError`,
    );
  }
});
