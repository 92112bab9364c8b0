import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { inspect } from "node:util";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";

const bg = context.background();
const HOUR = 3_600_000;

describe("toString() follows Go's format", () => {
  test("background() and todo()", () => {
    assert.equal(String(bg), "context.Background");
    assert.equal(`${context.todo()}`, "context.Background");
  });

  test("withCancel and withCancelCause print as WithCancel", () => {
    const [a, cancelA] = context.withCancel(bg);
    const [b, cancelB] = context.withCancelCause(a);
    assert.equal(String(a), "context.Background.WithCancel");
    assert.equal(String(b), "context.Background.WithCancel.WithCancel");
    cancelA();
    cancelB();
    assert.equal(String(a), "context.Background.WithCancel", "toString() changed after cancel");
  });

  test("withDeadline prints the ISO time and the time remaining", () => {
    const d = new Date(Date.now() + HOUR);
    const [ctx, cancel] = context.withDeadline(bg, d);
    const s = String(ctx);
    const m = /^context\.Background\.WithDeadline\((.+) \[(.+)\]\)$/.exec(s);
    assert.ok(
      m,
      `String(ctx) = ${JSON.stringify(s)}, want context.Background.WithDeadline(<ISO time> [<remaining>])`,
    );
    assert.equal(m[1], d.toISOString(), `time = ${m[1]}, want ${d.toISOString()}`);
    assert.ok(m[2]!.length > 0);
    cancel();
  });

  test("withTimeout prints as WithDeadline", () => {
    const [ctx, cancel] = context.withTimeoutCause(bg, HOUR, "why");
    const iso = ctx.deadline()!.toISOString();
    assert.match(String(ctx), /^context\.Background\.WithDeadline\(.+ \[.+\]\)$/);
    assert.ok(String(ctx).includes(iso), `String(ctx) = ${String(ctx)}, want it to show ${iso}`);
    cancel();
  });

  test("a deadline later than the parent's prints as WithCancel (it behaves like withCancel, as in Go)", () => {
    const [parent, cancel] = context.withTimeout(bg, HOUR);
    const [child] = context.withTimeout(parent, 2 * HOUR);
    assert.match(String(child), /^context\.Background\.WithDeadline\(.+\)\.WithCancel$/);
    cancel();
  });

  test("withValue prints a Key as its name, a string as itself, anything else as String(v)", () => {
    const requestID = context.createKey<string>("requestID");
    const cases: [unknown, unknown, string][] = [
      [requestID, "abc", "requestID, abc"],
      ["user", 42, "user, 42"],
      [1, true, "1, true"],
      [Symbol("sym"), null, "Symbol(sym), null"],
      [requestID, undefined, "requestID, undefined"],
      [requestID, { toString: () => "custom" }, "requestID, custom"],
      [requestID, ["a", "b"], "requestID, a,b"],
      [requestID, 10n, "requestID, 10"],
    ];
    for (const [key, val, want] of cases) {
      const ctx = context.withValue(bg, key, val);
      assert.equal(String(ctx), `context.Background.WithValue(${want})`);
    }
    const sym = Symbol("v");
    assert.equal(
      String(context.withValue(bg, "k", sym)),
      "context.Background.WithValue(k, Symbol(v))",
    );
  });

  test("withoutCancel prints as <parent>.WithoutCancel", () => {
    const [parent, cancel] = context.withCancel(bg);
    assert.equal(
      String(context.withoutCancel(parent)),
      "context.Background.WithCancel.WithoutCancel",
    );
    assert.equal(String(context.withoutCancel(bg)), "context.Background.WithoutCancel");
    cancel();
  });

  test("a chain prints every link", () => {
    const key = context.createKey<number>("n");
    const [c, cancel] = context.withCancel(context.withValue(bg, key, 1));
    const v = context.withValue(context.withoutCancel(c), "s", "t");
    assert.equal(
      String(v),
      "context.Background.WithValue(n, 1).WithCancel.WithoutCancel.WithValue(s, t)",
    );
    cancel();
  });

  test("withSignal prints under its parent", () => {
    const ac = new AbortController();
    const [ctx, cancel] = context.withSignal(bg, ac.signal);
    assert.ok(String(ctx).startsWith("context.Background."), `String(ctx) = ${String(ctx)}`);
    cancel();
  });

  test("a user's own parent prints as its own toString()", () => {
    const user: Context = {
      deadline: () => undefined,
      done: () => null,
      err: () => null,
      value: () => undefined,
      signal: bg.signal,
      toString: () => "myapp.RequestContext",
    };
    const [ctx, cancel] = context.withCancel(user);
    assert.equal(String(ctx), "myapp.RequestContext.WithCancel");
    assert.equal(String(context.withValue(user, "k", "v")), "myapp.RequestContext.WithValue(k, v)");
    cancel();
  });
});

describe("util.inspect shows the Go format", () => {
  test("for the root and derived contexts", () => {
    const [c, cancel] = context.withCancel(bg);
    const contexts: Context[] = [bg, c, context.withValue(c, "k", "v"), context.withoutCancel(c)];
    for (const ctx of contexts) {
      const shown = inspect(ctx);
      assert.ok(
        shown.includes(String(ctx)),
        `inspect(ctx) = ${shown}, want it to show ${String(ctx)}`,
      );
    }
    cancel();
  });

  test("nested in objects, as console.log shows them", () => {
    const [c, cancel] = context.withCancel(bg);
    const shown = inspect({ ctx: c });
    assert.ok(shown.includes("context.Background.WithCancel"), `inspect({ ctx }) = ${shown}`);
    cancel();
  });
});
