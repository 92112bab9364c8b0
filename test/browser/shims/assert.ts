/**
 * A browser stand-in for `node:assert/strict`: the assertions the core's
 * tests use, with Node's strict semantics (Object.is for equal, prototypes
 * and own keys for deepEqual) and got/want messages.
 */

export class AssertionError extends Error {
  override name = "AssertionError";
  readonly code = "ERR_ASSERTION";
  constructor(
    message: string,
    readonly actual?: unknown,
    readonly expected?: unknown,
    readonly operator?: string,
  ) {
    super(message);
  }
}

function show(v: unknown): string {
  try {
    if (typeof v === "string") return JSON.stringify(v);
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "function") return `[Function ${v.name || "anonymous"}]`;
    if (v instanceof Error) return `${v.name}: ${v.message}`;
    if (typeof v === "object" && v !== null) {
      const s = JSON.stringify(v);
      return s === undefined ? String(v) : s.length > 300 ? s.slice(0, 300) + "…" : s;
    }
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function fail(
  msg: string | Error | undefined,
  fallback: string,
  actual?: unknown,
  expected?: unknown,
  op?: string,
): never {
  if (msg instanceof Error) throw msg;
  throw new AssertionError(msg ?? fallback, actual, expected, op);
}

function isDeepEqual(a: unknown, b: unknown, seen: Map<object, object>): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (seen.get(a) === b) return true;
  seen.set(a, b);
  const tag = Object.prototype.toString.call(a);
  if (tag !== Object.prototype.toString.call(b)) return false;
  if (a instanceof Date) return Object.is(a.getTime(), (b as Date).getTime());
  if (a instanceof RegExp)
    return String(a) === String(b) && a.lastIndex === (b as RegExp).lastIndex;
  if (a instanceof Error && (a.message !== (b as Error).message || a.name !== (b as Error).name))
    return false;
  if (a instanceof Map) {
    const m = b as Map<unknown, unknown>;
    if (a.size !== m.size) return false;
    for (const [k, v] of a) if (!m.has(k) || !isDeepEqual(v, m.get(k), seen)) return false;
    return true;
  }
  if (a instanceof Set) {
    const s = b as Set<unknown>;
    if (a.size !== s.size) return false;
    for (const v of a) if (!s.has(v)) return false;
    return true;
  }
  if (Array.isArray(a) && a.length !== (b as unknown[]).length) return false;
  const ka = Reflect.ownKeys(a).filter((k) => Object.prototype.propertyIsEnumerable.call(a, k));
  const kb = Reflect.ownKeys(b).filter((k) => Object.prototype.propertyIsEnumerable.call(b, k));
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.propertyIsEnumerable.call(b, k)) return false;
    if (
      !isDeepEqual(
        (a as Record<PropertyKey, unknown>)[k],
        (b as Record<PropertyKey, unknown>)[k],
        seen,
      )
    )
      return false;
  }
  return true;
}

type Expected =
  | RegExp
  | ((err: unknown) => boolean)
  | (new (...a: never[]) => unknown)
  | Record<string, unknown>
  | Error;

function check(
  err: unknown,
  expected: Expected | string | undefined,
  msg: string | Error | undefined,
  fn: string,
): void {
  if (expected === undefined || typeof expected === "string") return;
  if (expected instanceof RegExp) {
    if (!expected.test(String(err)))
      fail(msg, `${fn}: the error ${show(err)} does not match ${expected}`, err, expected);
    return;
  }
  if (typeof expected === "function") {
    if (expected.prototype !== undefined && err instanceof (expected as new () => unknown)) return;
    if (Object.prototype.isPrototypeOf.call(Error, expected) || expected === Error) {
      fail(
        msg,
        `${fn}: the error ${show(err)} is not an instance of ${expected.name}`,
        err,
        expected,
      );
    }
    if ((expected as (e: unknown) => unknown)(err) !== true) {
      fail(msg, `${fn}: the validation function rejected the error ${show(err)}`, err, expected);
    }
    return;
  }
  for (const key of Reflect.ownKeys(expected)) {
    const want = (expected as Record<PropertyKey, unknown>)[key];
    const got = (err as Record<PropertyKey, unknown> | null)?.[key];
    if (want instanceof RegExp && typeof got === "string") {
      if (!want.test(got))
        fail(
          msg,
          `${fn}: error.${String(key)} = ${show(got)}, does not match ${want}`,
          err,
          expected,
        );
    } else if (!isDeepEqual(got, want, new Map())) {
      fail(msg, `${fn}: error.${String(key)} = ${show(got)}, want ${show(want)}`, err, expected);
    }
  }
}

type Msg = string | Error;

function ok(value: unknown, msg?: Msg): asserts value {
  if (!value) fail(msg, `ok: got ${show(value)}, want a truthy value`, value, true, "==");
}

const assert = Object.assign(ok, {
  AssertionError,
  ok,
  equal(a: unknown, b: unknown, msg?: Msg) {
    if (!Object.is(a, b)) fail(msg, `equal: got ${show(a)}, want ${show(b)}`, a, b, "strictEqual");
  },
  notEqual(a: unknown, b: unknown, msg?: Msg) {
    if (Object.is(a, b)) fail(msg, `notEqual: both are ${show(a)}`, a, b, "notStrictEqual");
  },
  deepEqual(a: unknown, b: unknown, msg?: Msg) {
    if (!isDeepEqual(a, b, new Map()))
      fail(msg, `deepEqual: got ${show(a)}, want ${show(b)}`, a, b, "deepStrictEqual");
  },
  notDeepEqual(a: unknown, b: unknown, msg?: Msg) {
    if (isDeepEqual(a, b, new Map()))
      fail(msg, `notDeepEqual: both are ${show(a)}`, a, b, "notDeepStrictEqual");
  },
  match(s: string, re: RegExp, msg?: Msg) {
    if (typeof s !== "string" || !re.test(s))
      fail(msg, `match: ${show(s)} does not match ${re}`, s, re, "match");
  },
  doesNotMatch(s: string, re: RegExp, msg?: Msg) {
    if (typeof s !== "string" || re.test(s))
      fail(msg, `doesNotMatch: ${show(s)} matches ${re}`, s, re, "doesNotMatch");
  },
  throws(fn: () => unknown, expected?: Expected | string, msg?: Msg) {
    try {
      fn();
    } catch (err) {
      check(err, expected, typeof expected === "string" ? expected : msg, "throws");
      return;
    }
    fail(typeof expected === "string" ? expected : msg, "throws: missing expected exception");
  },
  doesNotThrow(fn: () => unknown, msg?: Msg) {
    try {
      fn();
    } catch (err) {
      fail(
        typeof msg === "string" || msg instanceof Error ? msg : undefined,
        `doesNotThrow: got ${show(err)}`,
        err,
      );
    }
  },
  async rejects(
    p: Promise<unknown> | (() => Promise<unknown>),
    expected?: Expected | string,
    msg?: Msg,
  ) {
    try {
      await (typeof p === "function" ? p() : p);
    } catch (err) {
      check(err, expected, typeof expected === "string" ? expected : msg, "rejects");
      return;
    }
    fail(typeof expected === "string" ? expected : msg, "rejects: missing expected rejection");
  },
  async doesNotReject(p: Promise<unknown> | (() => Promise<unknown>), msg?: Msg) {
    try {
      await (typeof p === "function" ? p() : p);
    } catch (err) {
      fail(msg, `doesNotReject: got ${show(err)}`, err);
    }
  },
  fail(msg?: Msg): never {
    return fail(msg, "Failed");
  },
  ifError(v: unknown) {
    if (v !== null && v !== undefined) throw v;
  },
});

Object.assign(assert, {
  strictEqual: assert.equal,
  notStrictEqual: assert.notEqual,
  deepStrictEqual: assert.deepEqual,
  notDeepStrictEqual: assert.notDeepEqual,
  strict: assert,
});

export default assert;
export const { equal, notEqual, deepEqual, notDeepEqual, match, doesNotMatch, throws, rejects } =
  assert;
export const strictEqual = assert.equal;
export const deepStrictEqual = assert.deepEqual;
export { ok };
