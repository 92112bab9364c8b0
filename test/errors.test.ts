import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as context from "../src/index.js";

const bg = context.background();

describe("Canceled and DeadlineExceeded", () => {
  test('Canceled is an Error named "AbortError" with message "context canceled"', () => {
    assert.ok(context.Canceled instanceof Error, "Canceled is not an Error");
    assert.equal(context.Canceled.message, "context canceled");
    assert.equal(context.Canceled.name, "AbortError");
  });

  test('DeadlineExceeded is an Error named "TimeoutError" with message "context deadline exceeded"', () => {
    assert.ok(context.DeadlineExceeded instanceof Error, "DeadlineExceeded is not an Error");
    assert.equal(context.DeadlineExceeded.message, "context deadline exceeded");
    assert.equal(context.DeadlineExceeded.name, "TimeoutError");
  });

  test("they are distinct and err() returns them by identity", () => {
    assert.notEqual(context.Canceled, context.DeadlineExceeded);
    const [a, cancel] = context.withCancel(bg);
    cancel();
    const [b] = context.withTimeout(bg, 0);
    assert.equal(a.err(), context.Canceled, "err() is not the Canceled object itself");
    assert.equal(
      b.err(),
      context.DeadlineExceeded,
      "err() is not the DeadlineExceeded object itself",
    );
  });
});

/**
 * Asserts that call() throws, or returns a promise that rejects, with a TypeError whose message
 * matches every pattern in want and none in unwanted, and is not a bare property-access crash.
 */
async function assertTypeError(
  call: () => unknown,
  want: RegExp[],
  unwanted: RegExp[] = [],
): Promise<void> {
  let error: unknown;
  let threw = false;
  try {
    const r = call();
    if (r && typeof (r as PromiseLike<unknown>).then === "function") {
      await r;
    } else if (r && typeof (r as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
      // An async iterable may report bad input on its first next().
      const it = (r as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      await it.next();
      await it.return?.();
    }
  } catch (e) {
    threw = true;
    error = e;
  }
  assert.ok(threw, `no error, want a TypeError matching ${want.join(" and ")}`);
  assert.ok(error instanceof TypeError, `got ${String(error)}, want a TypeError`);
  const message = error.message;
  assert.doesNotMatch(
    message,
    /cannot read propert|is not a function|undefined \(reading/i,
    `message ${JSON.stringify(message)} is a property-access crash`,
  );
  for (const re of want)
    assert.match(message, re, `message ${JSON.stringify(message)} does not match ${re}`);
  for (const re of unwanted)
    assert.doesNotMatch(
      message,
      re,
      `message ${JSON.stringify(message)} names ${re}, an internal helper, not the function called`,
    );
}

const fix = /background\(\)/;
const ac = new AbortController();

/** Each public function that takes a context, called with a given parent. */
const takesContext: [string, (parent: never) => unknown, RegExp[]][] = [
  ["withCancel", (p) => context.withCancel(p), [/\bwithCancel\b/]],
  ["withCancelCause", (p) => context.withCancelCause(p), [/\bwithCancelCause\b/]],
  ["withDeadline", (p) => context.withDeadline(p, Date.now() + 1000), [/\bwithDeadline\b/]],
  [
    "withDeadlineCause",
    (p) => context.withDeadlineCause(p, Date.now() + 1000, "c"),
    [/\bwithDeadlineCause\b/],
  ],
  ["withTimeout", (p) => context.withTimeout(p, 1000), [/\bwithTimeout\b/]],
  ["withTimeoutCause", (p) => context.withTimeoutCause(p, 1000, "c"), [/\bwithTimeoutCause\b/]],
  ["withValue", (p) => context.withValue(p, "k", "v"), [/\bwithValue\b/]],
  ["withoutCancel", (p) => context.withoutCancel(p), [/\bwithoutCancel\b/]],
  ["afterFunc", (p) => context.afterFunc(p, () => {}), [/\bafterFunc\b/]],
  ["cause", (p) => context.cause(p), [/\bcause\b/]],
  ["withSignal", (p) => context.withSignal(p, ac.signal), [/\bwithSignal\b/]],
  ["sleep", (p) => context.sleep(p, 1), [/\bsleep\b/]],
  ["ticker", (p) => context.ticker(p, 1), [/\bticker\b/]],
];

/** Internal helpers a wrapper might delegate to; the message must name the function the user called. */
const otherNames = (fn: string) =>
  takesContext
    .map(([n]) => n)
    .filter(
      (n) => n !== fn && n !== "cause" && !(fn.startsWith(n) && fn !== n) && !n.startsWith(fn),
    )
    .map((n) => new RegExp(`\\b${n}\\b`));

describe("a null or undefined context is a TypeError naming the function and the fix", () => {
  for (const [fn, call, want] of takesContext) {
    for (const bad of [undefined, null]) {
      test(`${fn}(${String(bad)}, ...)`, async () => {
        await assertTypeError(() => call(bad as never), [...want, fix], otherNames(fn));
      });
    }
  }
});

describe("a null or undefined key or signal is a TypeError", () => {
  for (const bad of [undefined, null]) {
    test(`withValue(ctx, ${String(bad)}, v)`, async () => {
      await assertTypeError(() => context.withValue(bg, bad, "v"), [/\bwithValue\b/, /key/]);
    });
    test(`withSignal(ctx, ${String(bad)})`, async () => {
      await assertTypeError(
        () => context.withSignal(bg, bad as never),
        [/\bwithSignal\b/, /signal/],
      );
    });
  }
});

describe("a bad timeout or deadline is a TypeError naming the function and the value", () => {
  const badMs: [string, unknown, RegExp][] = [
    ["NaN", NaN, /NaN/],
    ['"100"', "100", /"?100"?/],
    ["undefined", undefined, /undefined/],
    ["null", null, /null/],
    ["100n", 100n, /100/],
    ["{}", {}, /object|\{\}/i],
    ["a symbol", Symbol("ms"), /symbol/i],
  ];
  for (const [label, ms, shows] of badMs) {
    test(`withTimeout(ctx, ${label})`, async () => {
      await assertTypeError(
        () => context.withTimeout(bg, ms as never),
        [/\bwithTimeout\b/, shows],
        [/\bwithDeadline\b/],
      );
    });
    test(`withTimeoutCause(ctx, ${label}, cause)`, async () => {
      await assertTypeError(
        () => context.withTimeoutCause(bg, ms as never, "c"),
        [/\bwithTimeoutCause\b/, shows],
        [/\bwithDeadline(Cause)?\b/],
      );
    });
    test(`sleep(ctx, ${label})`, async () => {
      await assertTypeError(() => context.sleep(bg, ms as never), [/\bsleep\b/, shows]);
    });
    test(`ticker(ctx, ${label})`, async () => {
      await assertTypeError(() => context.ticker(bg, ms as never), [/\bticker\b/, shows]);
    });
  }

  const badDeadlines: [string, unknown][] = [
    ["NaN", NaN],
    ["an invalid Date", new Date(NaN)],
    ['"2030-01-01"', "2030-01-01"],
    ["undefined", undefined],
    ["null", null],
    ["{}", {}],
  ];
  for (const [label, d] of badDeadlines) {
    test(`withDeadline(ctx, ${label})`, async () => {
      await assertTypeError(() => context.withDeadline(bg, d as never), [/\bwithDeadline\b/]);
    });
    test(`withDeadlineCause(ctx, ${label}, cause)`, async () => {
      await assertTypeError(
        () => context.withDeadlineCause(bg, d as never, "c"),
        [/\bwithDeadlineCause\b/],
      );
    });
  }

  test("a bad timeout throws and leaves the parent working", async () => {
    const [parent, cancel] = context.withCancel(bg);
    assert.throws(() => context.withTimeout(parent, NaN), TypeError);
    cancel();
    assert.equal(parent.err(), context.Canceled);
  });
});

describe("ticker's ms must be positive", () => {
  for (const ms of [0, -1]) {
    test(`ticker(ctx, ${ms}) is an error naming ticker`, async () => {
      let error: unknown;
      try {
        const it = context.ticker(bg, ms)[Symbol.asyncIterator]();
        await it.next();
        await it.return?.();
      } catch (e) {
        error = e;
      }
      assert.ok(error instanceof Error, `ticker(bg, ${ms}): got ${String(error)}, want an error`);
      assert.match(error.message, /\bticker\b/);
    });
  }
});
