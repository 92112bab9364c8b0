import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { execFile } from "node:child_process";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";
import { flush, trackTimers } from "./helpers.js";

const bg = context.background();
const HOUR = 3_600_000;
const MAX_TIMEOUT = 2 ** 31 - 1;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  return String(err);
}

/** Waits for ctx to be done, failing after ms. */
async function doneWithin(ctx: Context, ms: number, what = "ctx"): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not done after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([ctx.done(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("withDeadline", () => {
  test("reports its deadline, given as a Date or as epoch ms", () => {
    const d = Date.now() + HOUR;
    const [a, cancelA] = context.withDeadline(bg, new Date(d));
    const [b, cancelB] = context.withDeadline(bg, d);
    assert.ok(a.deadline() instanceof Date, "deadline() is not a Date");
    assert.equal(
      a.deadline()?.getTime(),
      d,
      `deadline() = ${a.deadline()?.toISOString()}, want ${new Date(d).toISOString()}`,
    );
    assert.equal(
      b.deadline()?.getTime(),
      d,
      `deadline() = ${b.deadline()?.toISOString()}, want ${new Date(d).toISOString()}`,
    );
    assert.equal(a.err(), null);
    assert.notEqual(a.done(), null);
    cancelA();
    cancelB();
    assert.equal(a.err(), context.Canceled, `err() = ${name(a.err())} after cancel, want Canceled`);
    assert.equal(context.cause(a), context.Canceled);
  });

  test("is done with DeadlineExceeded when the deadline passes", async () => {
    const [ctx, cancel] = context.withDeadline(bg, Date.now() + 20);
    const signal = ctx.signal;
    await doneWithin(ctx, 2000);
    assert.equal(
      ctx.err(),
      context.DeadlineExceeded,
      `err() = ${name(ctx.err())}, want DeadlineExceeded`,
    );
    assert.equal(context.cause(ctx), context.DeadlineExceeded);
    assert.equal(signal.reason, context.DeadlineExceeded, "signal.reason !== err()");
    cancel();
    assert.equal(ctx.err(), context.DeadlineExceeded, "cancel() after the deadline changed err()");
  });

  test("a deadline in the past makes a context born done with DeadlineExceeded", async () => {
    const past = Date.now() - 1000;
    for (const d of [past, new Date(past), Date.now(), -Infinity]) {
      const [ctx, cancel] = context.withDeadline(bg, d);
      assert.equal(
        ctx.err(),
        context.DeadlineExceeded,
        `withDeadline(bg, ${String(d)}).err() = ${name(ctx.err())}, want DeadlineExceeded`,
      );
      assert.equal(context.cause(ctx), context.DeadlineExceeded);
      assert.equal(ctx.signal.aborted, true);
      assert.equal(ctx.signal.reason, context.DeadlineExceeded);
      await doneWithin(ctx, 1000);
      cancel();
      assert.equal(
        ctx.err(),
        context.DeadlineExceeded,
        "cancel() changed err() of a born-done context",
      );
    }
  });

  test("a born-done context still reports the deadline it was given (as in Go)", () => {
    const past = Date.now() - 1000;
    const [ctx] = context.withDeadline(bg, past);
    assert.equal(
      ctx.deadline()?.getTime(),
      past,
      `deadline() = ${String(ctx.deadline())}, want ${new Date(past).toISOString()}`,
    );
  });

  test("accepts a Date from another realm (an iframe, a vm context)", () => {
    const d = Date.now() + HOUR;
    const foreign = vm.runInNewContext(`new Date(${d})`) as Date;
    assert.equal(
      foreign instanceof Date,
      false,
      "the vm's Date passed instanceof: not a foreign realm",
    );
    const [ctx, cancel] = context.withDeadline(bg, foreign);
    assert.equal(
      ctx.deadline()?.getTime(),
      d,
      `deadline() = ${String(ctx.deadline())}, want ${new Date(d).toISOString()}`,
    );
    cancel();
    assert.throws(() => context.withDeadline(bg, vm.runInNewContext("new Date(NaN)") as Date), {
      name: "TypeError",
      message:
        /^withDeadline\(parent, d\): d must be a valid Date or epoch milliseconds, got an invalid Date$/,
    });
    assert.throws(() => context.withDeadline(bg, NaN), {
      name: "TypeError",
      message:
        /^withDeadline\(parent, d\): d must be a valid Date or epoch milliseconds, got NaN \(number\)$/,
    });
  });

  test("a deadline beyond the range of Date reports the last Date there is, and never fires", async () => {
    const last = 8.64e15;
    const made: [string, Context, () => void][] = [
      ["withTimeout(bg, 1e16)", ...context.withTimeout(bg, 1e16)],
      ["withTimeout(bg, Number.MAX_VALUE)", ...context.withTimeout(bg, Number.MAX_VALUE)],
      ["withDeadline(bg, Number.MAX_VALUE)", ...context.withDeadline(bg, Number.MAX_VALUE)],
      [
        "withDeadlineCause(bg, 1e300, cause)",
        ...context.withDeadlineCause(bg, 1e300, new Error("late")),
      ],
    ];
    for (const [call, ctx] of made) {
      assert.equal(
        ctx.deadline()?.getTime(),
        last,
        `${call}.deadline() = ${String(ctx.deadline())}, want the last Date`,
      );
      assert.match(
        String(ctx),
        /^context\.Background\.WithDeadline\(\+275760-09-13T00:00:00\.000Z \[/,
      );
      // A user's wrapper that forwards deadline() is a valid parent.
      const wrapper: Context = {
        deadline: () => ctx.deadline(),
        done: () => ctx.done(),
        err: () => ctx.err(),
        value: (k: unknown) => ctx.value(k),
        signal: ctx.signal,
      };
      const [child, cancelChild] = context.withCancel(wrapper);
      assert.equal(child.deadline()?.getTime(), last);
      cancelChild();
    }
    await flush();
    for (const [call, ctx, cancel] of made) {
      assert.equal(ctx.err(), null, `${call}.err() = ${name(ctx.err())}, want null`);
      cancel();
    }
  });

  test("a deadline before the first Date is past: born done, reporting the first Date", () => {
    const [ctx, cancel] = context.withTimeout(bg, -Infinity);
    assert.equal(
      ctx.err(),
      context.DeadlineExceeded,
      `err() = ${name(ctx.err())}, want DeadlineExceeded`,
    );
    assert.equal(
      ctx.deadline()?.getTime(),
      -8.64e15,
      `deadline() = ${String(ctx.deadline())}, want the first Date`,
    );
    assert.match(
      String(ctx),
      /^context\.Background\.WithDeadline\(-271821-04-20T00:00:00\.000Z \[/,
    );
    cancel();
    const [d] = context.withDeadline(bg, -Number.MAX_VALUE);
    assert.equal(d.deadline()?.getTime(), -8.64e15);
  });

  test("Infinity means no deadline: it behaves like withCancel", () => {
    const [ctx, cancel] = context.withDeadline(bg, Infinity);
    assert.equal(
      ctx.deadline(),
      undefined,
      `deadline() = ${String(ctx.deadline())}, want undefined`,
    );
    assert.equal(ctx.err(), null);
    assert.notEqual(ctx.done(), null, "done() = null, want a Promise (cancelable)");
    cancel();
    assert.equal(ctx.err(), context.Canceled);
  });

  test("never extends its parent's deadline: the child reports the parent's", async () => {
    const [parent, cancelParent] = context.withTimeout(bg, 30);
    const pd = parent.deadline()!.getTime();
    const [child, cancelChild] = context.withDeadline(parent, Date.now() + HOUR);
    assert.equal(
      child.deadline()?.getTime(),
      pd,
      `child.deadline() = ${child.deadline()?.toISOString()}, want the parent's ${new Date(pd).toISOString()}`,
    );
    await doneWithin(child, 2000, "child");
    assert.equal(
      child.err(),
      context.DeadlineExceeded,
      `child.err() = ${name(child.err())}, want DeadlineExceeded`,
    );
    cancelChild();
    cancelParent();
  });

  test("an earlier deadline than the parent's is the child's own", async () => {
    const [parent, cancelParent] = context.withTimeout(bg, HOUR);
    const d = Date.now() + 20;
    const [child, cancelChild] = context.withDeadline(parent, d);
    assert.equal(child.deadline()?.getTime(), d);
    await doneWithin(child, 2000, "child");
    assert.equal(child.err(), context.DeadlineExceeded);
    assert.equal(
      parent.err(),
      null,
      `parent.err() = ${name(parent.err())}, want null: a child's deadline never reaches its parent`,
    );
    cancelChild();
    cancelParent();
  });

  test("descendants inherit the deadline through withCancel and withValue", () => {
    const d = Date.now() + HOUR;
    const [parent, cancel] = context.withDeadline(bg, d);
    const [c] = context.withCancel(parent);
    const v = context.withValue(c, "k", "v");
    const [cc] = context.withCancelCause(v);
    for (const x of [c, v, cc])
      assert.equal(
        x.deadline()?.getTime(),
        d,
        `${String(x)}: deadline() = ${String(x.deadline())}`,
      );
    cancel();
  });

  test("a deadline further than setTimeout can wait (2^31-1 ms) does not fire early", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const [ctx, cancel] = context.withTimeout(bg, MAX_TIMEOUT + 1000);
      const [ctx2, cancel2] = context.withDeadline(bg, Date.now() + 30 * 24 * HOUR);
      const [ctx3, cancel3] = context.withDeadline(bg, new Date(8.64e15));
      await delay(50);
      assert.equal(
        ctx.err(),
        null,
        `withTimeout(bg, 2^31+999).err() = ${name(ctx.err())} after 50 ms, want null`,
      );
      assert.equal(
        ctx2.err(),
        null,
        `withDeadline(bg, now+30 days).err() = ${name(ctx2.err())} after 50 ms, want null`,
      );
      assert.equal(
        ctx3.err(),
        null,
        `withDeadline(bg, max Date).err() = ${name(ctx3.err())} after 50 ms, want null`,
      );
      cancel();
      cancel2();
      cancel3();
      await flush();
      const overflow = warnings.filter((w) => w.name === "TimeoutOverflowWarning");
      assert.equal(overflow.length, 0, `got ${overflow.length} TimeoutOverflowWarning, want none`);
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("a deadline further than 2^31-1 ms still fires on time (mocked clock)", (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: Date.now() });
    try {
      const [ctx, cancel] = context.withTimeout(bg, MAX_TIMEOUT + 5000);
      t.mock.timers.tick(MAX_TIMEOUT);
      assert.equal(
        ctx.err(),
        null,
        `err() = ${name(ctx.err())} at 2^31-1 ms, want null (deadline is 5 s later)`,
      );
      t.mock.timers.tick(4000);
      assert.equal(
        ctx.err(),
        null,
        `err() = ${name(ctx.err())} 1 s before the deadline, want null`,
      );
      t.mock.timers.tick(2000);
      assert.equal(
        ctx.err(),
        context.DeadlineExceeded,
        `err() = ${name(ctx.err())} 1 s after the deadline, want DeadlineExceeded`,
      );
      cancel();
    } finally {
      t.mock.timers.reset();
    }
  });

  test("the timer is released as soon as the context is canceled", async () => {
    using timers = trackTimers(createHook);
    const before = await timers.pending();
    const cancels = [];
    for (let i = 0; i < 50; i++) {
      cancels.push(context.withTimeout(bg, HOUR)[1]);
      cancels.push(context.withDeadline(bg, Date.now() + HOUR)[1]);
      cancels.push(context.withTimeoutCause(bg, MAX_TIMEOUT + 1000, "far")[1]);
    }
    const [parent, cancelParent] = context.withCancel(bg);
    for (let i = 0; i < 50; i++) context.withTimeout(parent, HOUR);
    assert.ok(
      (await timers.pending()) > before,
      "no timer pending while deadlines are live (test is broken)",
    );
    for (const cancel of cancels) cancel();
    cancelParent(); // cancels the 50 children, whose cancel functions were dropped
    const after = await timers.pending();
    assert.equal(after, before, `${after - before} timers still pending after cancel, want 0`);
  });

  test("the timer is released when the parent's deadline fires first", async () => {
    using timers = trackTimers(createHook);
    const before = await timers.pending();
    const [parent] = context.withTimeout(bg, 20);
    const [child] = context.withTimeout(parent, 10); // its own timer, earlier than the parent's
    const [late] = context.withDeadline(parent, Date.now() + HOUR); // behaves like withCancel
    await doneWithin(parent, 2000, "parent");
    assert.equal(child.err(), context.DeadlineExceeded);
    assert.equal(late.err(), context.DeadlineExceeded);
    const after = await timers.pending();
    assert.equal(after, before, `${after - before} timers still pending, want 0`);
  });

  test("deadline timers never keep the process alive", async () => {
    const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
    const code = `
      const context = await import(${JSON.stringify(index)});
      const [ctx] = context.withTimeout(context.background(), 60_000);
      context.withDeadline(ctx, Date.now() + 120_000);
      context.withTimeoutCause(context.background(), 2 ** 31 + 60_000, "far");
      console.log("started");
    `;
    const start = Date.now();
    const { code: exit, stdout, stderr } = await runNode(code, 30_000);
    const elapsed = Date.now() - start;
    assert.equal(
      stdout.trim(),
      "started",
      `child stdout = ${JSON.stringify(stdout)}, stderr = ${stderr}`,
    );
    assert.equal(exit, 0, `child exit code = ${exit}, want 0; stderr: ${stderr}`);
    assert.ok(
      elapsed < 30_000,
      `child ran for ${elapsed} ms, want an exit well before the 60 s deadline`,
    );
  });

  test("sleep keeps the process alive, like setTimeout", async () => {
    const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
    const code = `
      const context = await import(${JSON.stringify(index)});
      await context.sleep(context.background(), 200);
      let n = 0;
      for await (const _ of context.ticker(context.background(), 50)) if (++n === 3) break;
      console.log("slept and ticked", n);
    `;
    const { code: exit, stdout, stderr } = await runNode(code, 30_000);
    assert.equal(
      stdout.trim(),
      "slept and ticked 3",
      `child stdout = ${JSON.stringify(stdout)}, stderr = ${stderr}`,
    );
    assert.equal(exit, 0, `child exit code = ${exit}, want 0; stderr: ${stderr}`);
  });
});

function runNode(
  code: string,
  timeout: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", code],
      { timeout, cwd: fileURLToPath(new URL("..", import.meta.url)) },
      (error, stdout, stderr) => {
        const exit = error ? ((error as { code?: unknown }).code ?? null) : 0;
        resolve({ code: typeof exit === "number" ? exit : null, stdout, stderr });
      },
    );
  });
}

describe("withDeadlineCause", () => {
  test("uses the cause when the deadline passes", async () => {
    const why = new Error("too slow");
    const [ctx, cancel] = context.withDeadlineCause(bg, Date.now() + 20, why);
    await doneWithin(ctx, 2000);
    assert.equal(
      ctx.err(),
      context.DeadlineExceeded,
      `err() = ${name(ctx.err())}, want DeadlineExceeded`,
    );
    assert.equal(
      context.cause(ctx),
      why,
      `cause(ctx) = ${name(context.cause(ctx))}, want the given cause`,
    );
    assert.equal(ctx.signal.reason, context.DeadlineExceeded, "signal.reason is not err()");
    cancel();
  });

  test("a past deadline is born done with the given cause", () => {
    const why = new Error("too late");
    const [ctx] = context.withDeadlineCause(bg, Date.now() - 1, why);
    assert.equal(ctx.err(), context.DeadlineExceeded);
    assert.equal(
      context.cause(ctx),
      why,
      `cause(ctx) = ${name(context.cause(ctx))}, want the given cause`,
    );
  });

  test("its cancel function records Canceled, not the deadline cause", () => {
    const [ctx, cancel] = context.withDeadlineCause(bg, Date.now() + HOUR, new Error("unused"));
    cancel();
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(
      context.cause(ctx),
      context.Canceled,
      `cause(ctx) = ${name(context.cause(ctx))}, want Canceled`,
    );
  });

  test("a child whose parent's deadline is earlier gets the parent's cause", async () => {
    const parentWhy = new Error("parent");
    const [parent, cancelParent] = context.withDeadlineCause(bg, Date.now() + 20, parentWhy);
    const [child, cancelChild] = context.withDeadlineCause(
      parent,
      Date.now() + HOUR,
      new Error("child"),
    );
    await doneWithin(child, 2000, "child");
    assert.equal(child.err(), context.DeadlineExceeded);
    assert.equal(
      context.cause(child),
      parentWhy,
      `cause(child) = ${String(context.cause(child))}, want the parent's cause`,
    );
    cancelChild();
    cancelParent();
  });
});

describe("withTimeout", () => {
  test("sets the deadline ms from now", () => {
    const before = Date.now();
    const [ctx, cancel] = context.withTimeout(bg, HOUR);
    const after = Date.now();
    const d = ctx.deadline()?.getTime();
    assert.ok(
      d !== undefined && d >= before + HOUR && d <= after + HOUR,
      `deadline() = ${String(ctx.deadline())}, want about an hour from now`,
    );
    cancel();
  });

  test("is done with DeadlineExceeded after ms, not before", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 300);
    await delay(30);
    assert.equal(
      ctx.err(),
      null,
      `err() = ${name(ctx.err())} at a tenth of the timeout, want null`,
    );
    await doneWithin(ctx, 5000);
    assert.equal(
      ctx.err(),
      context.DeadlineExceeded,
      `err() = ${name(ctx.err())}, want DeadlineExceeded`,
    );
    assert.equal(context.cause(ctx), context.DeadlineExceeded);
    cancel();
  });

  test("the deadline cancels every descendant", async () => {
    const [ctx, cancel] = context.withTimeout(bg, 20);
    const [c] = context.withCancel(ctx);
    const v = context.withValue(c, "k", 1);
    const [cc] = context.withCancelCause(v);
    await doneWithin(ctx, 2000);
    for (const x of [c, v, cc]) {
      assert.equal(
        x.err(),
        context.DeadlineExceeded,
        `${String(x)}: err() = ${name(x.err())}, want DeadlineExceeded`,
      );
      assert.equal(context.cause(x), context.DeadlineExceeded);
    }
    cancel();
  });

  for (const ms of [0, -1, -0, -1000, -Infinity]) {
    test(`a timeout of ${Object.is(ms, -0) ? "-0" : ms} makes a context born done with DeadlineExceeded`, async () => {
      const [ctx, cancel] = context.withTimeout(bg, ms);
      assert.equal(
        ctx.err(),
        context.DeadlineExceeded,
        `err() = ${name(ctx.err())}, want DeadlineExceeded`,
      );
      assert.equal(context.cause(ctx), context.DeadlineExceeded);
      assert.equal(ctx.signal.reason, context.DeadlineExceeded);
      await doneWithin(ctx, 1000);
      cancel();
    });
  }

  test("a born-done timeout under a done parent keeps the parent's error (as in Go)", () => {
    const [parent, cancel] = context.withCancel(bg);
    cancel();
    const [child] = context.withTimeout(parent, 0);
    assert.equal(
      child.err(),
      context.Canceled,
      `child.err() = ${name(child.err())}, want the parent's Canceled`,
    );
  });

  test("Infinity means no deadline: it behaves like withCancel", async () => {
    const [ctx, cancel] = context.withTimeout(bg, Infinity);
    assert.equal(
      ctx.deadline(),
      undefined,
      `deadline() = ${String(ctx.deadline())}, want undefined`,
    );
    assert.notEqual(ctx.done(), null);
    await delay(20);
    assert.equal(ctx.err(), null);
    cancel();
    assert.equal(ctx.err(), context.Canceled);
  });

  test("under a parent with a deadline, Infinity keeps the parent's deadline", () => {
    const d = Date.now() + HOUR;
    const [parent, cancel] = context.withDeadline(bg, d);
    const [child] = context.withTimeout(parent, Infinity);
    assert.equal(child.deadline()?.getTime(), d);
    cancel();
    assert.equal(child.err(), context.Canceled);
  });
});

describe("withTimeoutCause", () => {
  test("uses the cause when the timeout passes", async () => {
    const why = { slow: true };
    const [ctx, cancel] = context.withTimeoutCause(bg, 20, why);
    await doneWithin(ctx, 2000);
    assert.equal(ctx.err(), context.DeadlineExceeded);
    assert.equal(
      context.cause(ctx),
      why,
      `cause(ctx) = ${name(context.cause(ctx))}, want the given cause`,
    );
    cancel();
  });

  test("a zero timeout is born done with the given cause", () => {
    const why = new Error("no time");
    const [ctx] = context.withTimeoutCause(bg, 0, why);
    assert.equal(ctx.err(), context.DeadlineExceeded);
    assert.equal(context.cause(ctx), why);
  });

  test("Infinity means no deadline", () => {
    const [ctx, cancel] = context.withTimeoutCause(bg, Infinity, "never");
    assert.equal(ctx.deadline(), undefined);
    assert.notEqual(ctx.done(), null);
    cancel();
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(context.cause(ctx), context.Canceled);
  });

  test("descendants see the cause when the timer fires", async () => {
    const why = new Error("budget spent");
    const [ctx, cancel] = context.withTimeoutCause(bg, 20, why);
    const [child] = context.withCancel(ctx);
    await doneWithin(child, 2000, "child");
    assert.equal(context.cause(child), why);
    cancel();
  });
});
