import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as context from "../src/index.js";
import { flush } from "./helpers.js";

const bg = context.background();

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Ref'd timers pending in the process (sleep and ticker keep the process alive, so they show here). */
const pendingTimers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  return String(err);
}

/** Settles p, failing the test if it takes longer than ms. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("sleep", () => {
  test("resolves with undefined after ms", async () => {
    const start = performance.now();
    const v = await within(context.sleep(bg, 50), 2000, "sleep(bg, 50)");
    const elapsed = performance.now() - start;
    assert.equal(v, undefined);
    assert.ok(
      elapsed >= 40,
      `sleep(bg, 50) resolved after ${elapsed.toFixed(1)} ms, want about 50`,
    );
  });

  test("with ms 0 resolves on a following turn", async () => {
    let resolved = false;
    const p = context.sleep(bg, 0).then(() => (resolved = true));
    assert.equal(resolved, false, "sleep(bg, 0) resolved synchronously");
    await within(p, 1000, "sleep(bg, 0)");
    assert.equal(resolved, true);
  });

  test("rejects with ctx.err() when the context is canceled first", async () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    const p = context.sleep(ctx, 60_000);
    setTimeout(() => cancel(new Error("a cause is not the rejection")), 10);
    await assert.rejects(within(p, 2000, "sleep after cancel"), (e: unknown) => {
      assert.equal(
        e,
        context.Canceled,
        `sleep rejected with ${name(e)}, want ctx.err() = Canceled`,
      );
      return true;
    });
  });

  test("rejects with DeadlineExceeded when the deadline comes first", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 10);
    await assert.rejects(
      within(context.sleep(ctx, 60_000), 2000, "sleep past deadline"),
      (e: unknown) => {
        assert.equal(
          e,
          context.DeadlineExceeded,
          `sleep rejected with ${name(e)}, want DeadlineExceeded`,
        );
        return true;
      },
    );
    cancel();
  });

  test("on a context already done, rejects at once with its err()", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    await assert.rejects(
      within(context.sleep(ctx, 60_000), 1000, "sleep on a done ctx"),
      (e: unknown) => {
        assert.equal(e, context.Canceled, `sleep rejected with ${name(e)}, want Canceled`);
        return true;
      },
    );
    await assert.rejects(
      within(context.sleep(ctx, 0), 1000, "sleep(done, 0)"),
      (e: unknown) => e === context.Canceled,
    );
  });

  test("resolves when the context outlives ms", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 3_600_000);
    await within(context.sleep(ctx, 5), 2000, "sleep(ctx, 5)");
    assert.equal(ctx.err(), null);
    cancel();
  });

  test("leaves no pending timer once it settles", async () => {
    const before = pendingTimers();
    const [ctx, cancel] = context.withCancel(bg);
    const sleeps = Array.from({ length: 20 }, () =>
      context.sleep(ctx, 60_000).catch((e: unknown) => e),
    );
    assert.ok(
      pendingTimers() > before,
      "sleep left no ref'd timer while pending (it must keep the process alive)",
    );
    cancel();
    await Promise.all(sleeps);
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after cancel, want 0`,
    );
    await context.sleep(bg, 1);
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after sleep resolved, want 0`,
    );
  });
});

describe("ticker", () => {
  test("ticks once a period under node:test's mock.timers, which does not move performance.now()", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"] });
    const [ctx, cancel] = context.withCancel(bg);
    let ticks = 0;
    const run = (async () => {
      for await (const _ of context.ticker(ctx, 100)) ticks++;
    })();
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    try {
      for (let period = 1; period <= 5; period++) {
        await turn();
        t.mock.timers.tick(100);
        await turn();
        assert.equal(ticks, period, `ticks after ${period * 100} ms of mocked time`);
      }
    } finally {
      cancel();
      await run;
      t.mock.timers.reset();
    }
  });

  test("yields the time of each tick, in epoch ms", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    const ticks: number[] = [];
    const run = (async () => {
      for await (const t of context.ticker(ctx, 10)) {
        ticks.push(t);
        if (ticks.length === 3) break;
      }
    })();
    await within(run, 3000, "3 ticks of 10 ms");
    assert.equal(ticks.length, 3);
    for (const t of ticks) {
      assert.equal(typeof t, "number");
      assert.ok(
        Math.abs(t - Date.now()) < 1000,
        `tick = ${t}, want about Date.now() = ${Date.now()}`,
      );
    }
    assert.ok(
      ticks[0]! <= ticks[1]! && ticks[1]! <= ticks[2]!,
      `ticks not in order: ${ticks.join(", ")}`,
    );
    cancel();
  });

  test("ticks no faster than its period", async () => {
    const ticks: number[] = [];
    const start = Date.now();
    for await (const t of context.ticker(bg, 30)) {
      ticks.push(t);
      if (ticks.length === 3) break;
    }
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 60, `3 ticks of 30 ms took ${elapsed} ms, want at least about 90`);
  });

  test("ends quietly when the context is canceled inside the loop", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 5)) {
          if (++n === 2) cancel();
        }
      })(),
      3000,
      "ticker after cancel",
    );
    assert.equal(n, 2, `got ${n} ticks, want 2: a ticker yields only while ctx is live`);
  });

  test("ends quietly when the context is canceled while it waits", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    setTimeout(cancel, 20);
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 60_000)) n++;
      })(),
      2000,
      "ticker(ctx, 60 s) after cancel",
    );
    assert.equal(n, 0);
  });

  test("ends quietly at the context's deadline", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 100);
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 5)) {
          n++;
          assert.equal(ctx.err(), null, "ticker yielded after the deadline");
        }
      })(),
      3000,
      "ticker until deadline",
    );
    assert.ok(n >= 1, `got ${n} ticks in 100 ms of 5 ms ticks, want some`);
    assert.equal(ctx.err(), context.DeadlineExceeded);
    cancel();
  });

  test("on a context already done, yields nothing", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    cancel();
    let n = 0;
    await within(
      (async () => {
        for await (const _ of context.ticker(ctx, 5)) n++;
      })(),
      1000,
      "ticker on a done ctx",
    );
    assert.equal(n, 0);
  });

  test("leaves no pending timer after break or cancel", async () => {
    const before = pendingTimers();
    for await (const _ of context.ticker(bg, 5)) break;
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after break, want 0`,
    );

    const [ctx, cancel] = context.withCancel(bg);
    const it = context.ticker(ctx, 60_000)[Symbol.asyncIterator]();
    const next = it.next();
    await flush();
    cancel();
    const r = await within(next, 1000, "next() after cancel");
    assert.equal(r.done, true, "next() after cancel did not end the iteration");
    await flush();
    assert.equal(
      pendingTimers(),
      before,
      `${pendingTimers() - before} timers pending after cancel, want 0`,
    );
  });

  test("keeps ticking after a slow iteration", async () => {
    const [ctx, cancel] = context.withCancel(bg);
    const ticks: number[] = [];
    for await (const t of context.ticker(ctx, 5)) {
      ticks.push(t);
      if (ticks.length === 1) await delay(100);
      if (ticks.length === 3) break;
    }
    assert.equal(ticks.length, 3);
    cancel();
  });

  test("keeps ticking when the wall clock is stepped back an hour, and yields Date.now()", async () => {
    const realNow = Date.now;
    const [ctx, cancel] = context.withCancel(bg);
    const ticks: number[] = [];
    try {
      await within(
        (async () => {
          for await (const t of context.ticker(ctx, 10)) {
            ticks.push(t);
            if (ticks.length === 1) Date.now = () => realNow() - 3_600_000;
            if (ticks.length === 4) break;
          }
        })(),
        3000,
        "3 ticks of 10 ms after the wall clock stepped back",
      );
    } finally {
      Date.now = realNow;
      cancel();
    }
    const stepped = ticks[3]! - (realNow() - 3_600_000);
    assert.ok(
      Math.abs(stepped) < 1000,
      `last tick = ${ticks[3]}, want about the stepped Date.now() (off by ${stepped} ms)`,
    );
  });

  test("a period below 1 ms ticks every millisecond and leaves the event loop free", () => {
    // In a child process: a ticker that busy-loops would block this test file for good.
    const root = fileURLToPath(new URL("../", import.meta.url));
    const code = `
      import { ticker, background } from "./src/index.ts";
      let n = 0, fired = false;
      setTimeout(() => (fired = true), 5);
      for await (const _ of ticker(background(), 1e-5)) if (++n >= 5 && fired) break;
      console.log("ticks " + n);`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: root,
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.signal, null, `the child was killed (${r.signal}): the ticker blocked it`);
    assert.match(r.stdout, /^ticks \d+$/m, `child printed ${JSON.stringify(r.stdout + r.stderr)}`);
  });

  test("over a broken context, rejects the iteration instead of ending quietly", async () => {
    // done() resolves while err() stays null: the Context contract is broken.
    const settlesLive: context.Context = {
      deadline: () => undefined,
      done: () => delay(20),
      err: () => null,
      value: () => undefined,
      signal: new AbortController().signal,
    };
    await assert.rejects(
      within(
        (async () => {
          for await (const _ of context.ticker(settlesLive, 60_000));
        })(),
        3000,
        "ticker over a done() that settles while err() is null",
      ),
      {
        name: "TypeError",
        message: /^ticker\(ctx, ms\): ctx's done\(\) settled but its err\(\) is still null/,
      },
    );
    // err() throws (done() never settles): the error comes out of the loop.
    let broken = false;
    const errThrows: context.Context = {
      deadline: () => undefined,
      done: () => new Promise<void>(() => {}),
      err: () => {
        if (broken) throw new Error("err() is broken");
        return null;
      },
      value: () => undefined,
      signal: new AbortController().signal,
    };
    setTimeout(() => (broken = true), 20);
    await assert.rejects(
      within(
        (async () => {
          for await (const _ of context.ticker(errThrows, 5));
        })(),
        3000,
        "ticker over an err() that throws",
      ),
      /err\(\) is broken/,
    );
  });

  test("still refuses a period that is not positive", () => {
    for (const ms of [0, -1, -Infinity]) {
      assert.throws(() => context.ticker(bg, ms), {
        name: "RangeError",
        message: /^ticker\(ctx, ms\): ms must be a positive period/,
      });
    }
  });
});
