import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as context from "../../src/index.js";
import { hooks } from "../../src/debug-hooks.js";
import { LeakError, checkLeaks, installGuard, trackContexts } from "../../src/testing/index.js";

const bg = context.background();

// These tests check that the core's hooks are back to null: no guard from the environment (TAPROOT_DEBUG=1).
before(() => installGuard({ enabled: false }));

describe("checkLeaks", () => {
  test("resolves with the body's result when every context it created is done", async () => {
    const got = await checkLeaks(async () => {
      const [ctx, cancel] = context.withTimeout(bg, 60_000);
      const [child, cancelChild] = context.withCancel(ctx);
      await context.sleep(child, 1);
      cancelChild();
      cancel();
      return 42;
    });
    assert.equal(got, 42);
    assert.equal(hooks, null, "debug hooks left installed after checkLeaks");
  });

  test("reports a live context with its toString(), age and creation stack", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const held: context.Context[] = [];
    try {
      const err = await checkLeaks(
        () => {
          const [ctx] = context.withTimeout(parent, 60_000);
          held.push(ctx);
        },
        { grace: 0 },
      ).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(
        err instanceof LeakError,
        `checkLeaks rejected with ${String(err)}, want a LeakError`,
      );
      assert.equal(err.leaks.length, 1);
      assert.equal(err.leaks[0]!.context, held[0]);
      assert.equal(err.leaks[0]!.kind, "withDeadline");
      assert.match(
        err.message,
        /^checkLeaks\(fn\): 1 of the 1 context created while tracking is still live/,
      );
      assert.ok(err.message.includes(String(held[0]).slice(0, 40)), err.message);
      assert.match(err.message, /withDeadline · live · deadline in \d/);
      assert.match(err.message, /age \d/);
      assert.match(err.message, /created at:\n\s+at .*track\.test\.ts:\d+:\d+/);
      assert.doesNotMatch(
        err.message,
        /src\/deadline\.ts|src\/cancel\.ts/,
        "core frames in the creation stack",
      );
      assert.match(err.message, /call its cancel function/);
    } finally {
      cancelParent();
    }
  });

  test("cancels each leaked context once reported, with the LeakError as its cause", async () => {
    const held: context.Context[] = [];
    const err = await checkLeaks(
      () => {
        const [ctx] = context.withCancelCause(bg);
        held.push(ctx);
      },
      { grace: 0 },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(
      err instanceof LeakError,
      `checkLeaks rejected with ${String(err)}, want a LeakError`,
    );
    assert.equal(
      held[0]!.err(),
      context.Canceled,
      "the leaked context is still live after the report",
    );
    assert.equal(context.cause(held[0]!), err, "cause(leaked) is not the LeakError");
  });

  test("cancels a leaked context of every kind with the LeakError as its cause", async () => {
    const held: context.Context[] = [];
    const err = await checkLeaks(
      () => {
        held.push(context.withCancel(bg)[0]);
        held.push(context.withTimeout(bg, 60_000)[0]);
        held.push(context.withDeadline(bg, Date.now() + 60_000)[0]);
        held.push(context.withSignal(bg, new AbortController().signal)[0]);
      },
      { grace: 0 },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(
      err instanceof LeakError,
      `checkLeaks rejected with ${String(err)}, want a LeakError`,
    );
    for (const ctx of held) {
      assert.equal(
        ctx.err(),
        context.Canceled,
        `${String(ctx)}.err() = ${String(ctx.err())}, want Canceled`,
      );
      assert.equal(
        context.cause(ctx),
        err,
        `cause(${String(ctx)}) = ${String(context.cause(ctx))}, want the LeakError`,
      );
    }
  });

  test("rejects options that are not an object, naming checkLeaks", async () => {
    for (const bad of [null, "x", 5]) {
      await assert.rejects(
        checkLeaks(async () => {}, bad as never),
        {
          name: "TypeError",
          message: /^checkLeaks\(fn, options\): options must be an object, got /,
        },
      );
    }
    await assert.rejects(
      checkLeaks(async () => {}, { grace: "100" as never }),
      {
        name: "TypeError",
        message:
          /^checkLeaks\(fn, options\): options\.grace must be a number of milliseconds, zero or more, got "100" \(string\)/,
      },
    );
    assert.equal(hooks, null, "debug hooks left installed after a rejected checkLeaks");
  });

  test("rejects an ignore that is not a function before running the body", async () => {
    let ran = false;
    await assert.rejects(
      checkLeaks(
        () => {
          ran = true;
        },
        { ignore: 5 as never },
      ),
      {
        name: "TypeError",
        message:
          /^checkLeaks\(fn, options\): options\.ignore must be a function \(ctx\) => boolean, got 5 \(number\)/,
      },
    );
    assert.equal(ran, false, "the body ran although the options were bad");
  });

  test("a leaked ticker no longer keeps node --test from finishing", async () => {
    const fixture = fileURLToPath(new URL("./fixtures/leaked-ticker.ts", import.meta.url));
    // A runner of its own: without NODE_TEST_CONTEXT the child is not a subtest of this one.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ["--import", "tsx", "--test", fixture], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk));
    let timer: NodeJS.Timeout | undefined;
    const code = await new Promise<number | string>((resolve) => {
      child.on("exit", (c) => resolve(c ?? "killed"));
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("still running after 60 s");
      }, 60_000);
    });
    clearTimeout(timer);
    assert.equal(code, 0, `node --test on the fixture ended with ${code}:\n${out}`);
    assert.match(out, /^# tests 1$/m, `no summary printed:\n${out}`);
    assert.match(out, /^# pass 1$/m, `the fixture's test did not pass:\n${out}`);
  });

  test("does not report a context that is unreachable, even never canceled", async () => {
    await checkLeaks(() => {
      // withCancel under background holds nothing once dropped: garbage, not a leak.
      context.withCancel(bg);
    });
  });

  test("waits up to grace for contexts that finish soon after the body", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    try {
      await checkLeaks(
        () => {
          const [ctx] = context.withTimeout(parent, 20);
          void ctx; // its deadline ends it 20ms later, well inside the grace period
        },
        { grace: 2_000 },
      );
    } finally {
      cancelParent();
    }
  });

  test("sees contexts created on other code paths while it runs", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const kept: context.Context[] = [];
    try {
      await assert.rejects(
        checkLeaks(
          async () => {
            await new Promise<void>((resolve) =>
              setTimeout(() => {
                kept.push(context.withCancel(parent)[0]);
                resolve();
              }, 1),
            );
          },
          { grace: 0 },
        ),
        (e: unknown) => e instanceof LeakError && e.leaks.length === 1,
      );
    } finally {
      cancelParent();
    }
  });

  test("rethrows the body's own error unchanged and stops tracking", async () => {
    const boom = new Error("boom");
    await assert.rejects(
      checkLeaks(() => {
        context.withCancel(bg);
        throw boom;
      }),
      (e: unknown) => e === boom,
    );
    assert.equal(hooks, null, "debug hooks left installed after a failing body");
  });

  test("ignore leaves chosen contexts out of the report", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const kept: context.Context[] = [];
    try {
      await checkLeaks(() => void kept.push(context.withCancel(parent)[0]), {
        grace: 0,
        ignore: (ctx) => ctx === kept[0],
      });
    } finally {
      cancelParent();
    }
  });

  test("settles under node:test's mock.timers, with the timers and Date mocked", async (t) => {
    // The runner's timeout ends the test if checkLeaks waits on the mocked timers or clock again.
    t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "setImmediate", "Date"] });
    try {
      const got = await checkLeaks(async () => {
        const [, cancel] = context.withCancel(bg);
        cancel();
        return "clean";
      });
      assert.equal(got, "clean");
      let leaked: context.Context | undefined;
      const err: unknown = await checkLeaks(() => {
        [leaked] = context.withTimeout(bg, 60_000);
      }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(
        err instanceof LeakError,
        `checkLeaks(leaking body) = ${String(err)}, want a LeakError`,
      );
      assert.equal(err.leaks.length, 1, `LeakError.leaks.length = ${err.leaks.length}, want 1`);
      assert.equal(
        leaked?.err(),
        context.Canceled,
        "the leaked context was not canceled once reported",
      );
    } finally {
      t.mock.timers.reset();
    }
  });

  test("rejects a non-function with a TypeError naming checkLeaks and the fix", async () => {
    await assert.rejects(checkLeaks(null as never), {
      name: "TypeError",
      message: /^checkLeaks\(fn, options\): fn must be a function, got null; pass the test body/,
    });
  });
});

describe("trackContexts", () => {
  test("leaks() lists live contexts, oldest first, without stopping", async () => {
    const [parent, cancelParent] = context.withCancel(bg);
    const tracker = trackContexts();
    try {
      const [a, cancelA] = context.withCancel(parent);
      const [b, cancelB] = context.withCancel(a);
      const found = await tracker.leaks();
      assert.deepEqual(
        found.map((l) => l.context),
        [a, b],
      );
      assert.equal(tracker.active, true);
      cancelB();
      cancelA();
      assert.deepEqual(await tracker.leaks(), []);
    } finally {
      tracker.stop();
      cancelParent();
    }
    assert.equal(tracker.active, false);
    assert.equal(hooks, null);
  });

  test("assertNoLeaks stops the tracker, and passes once everything is canceled", async () => {
    const tracker = trackContexts({ grace: 0 });
    const [ctx, cancel] = context.withCancelCause(bg);
    cancel(new Error("done"));
    await tracker.assertNoLeaks();
    assert.equal(tracker.active, false);
    assert.equal(ctx.err(), context.Canceled);
  });

  test("is Disposable: `using` stops it at the end of the scope", () => {
    {
      using tracker = trackContexts();
      assert.equal(tracker.active, true);
      assert.notEqual(hooks, null);
    }
    assert.equal(hooks, null);
  });

  test("nested trackers each see the contexts created while they are active", async () => {
    const outer = trackContexts({ grace: 0 });
    const inner = trackContexts({ grace: 0 });
    const [parent, cancelParent] = context.withCancel(bg);
    await assert.rejects(inner.assertNoLeaks(), LeakError);
    assert.notEqual(hooks, null, "the outer tracker lost its hooks when the inner one stopped");
    cancelParent();
    await outer.assertNoLeaks();
    assert.equal(hooks, null);
    void parent;
  });

  test("rejects options that are not an object, and an ignore that is not a function", () => {
    for (const bad of [null, "x", 5]) {
      assert.throws(() => trackContexts(bad as never), {
        name: "TypeError",
        message:
          /^trackContexts\(options\): options must be an object, got .*; leave it out for the defaults/,
      });
    }
    assert.throws(() => trackContexts({ ignore: "ctx" as never }), {
      name: "TypeError",
      message: /^trackContexts\(options\): options\.ignore must be a function/,
    });
    assert.equal(hooks, null, "a rejected trackContexts left the debug hooks installed");
  });

  test("rejects a bad grace with a TypeError naming the option", () => {
    assert.throws(() => trackContexts({ grace: -1 }), {
      name: "TypeError",
      message:
        /^trackContexts\(options\): options\.grace must be a number of milliseconds, zero or more, got -1/,
    });
  });
});
