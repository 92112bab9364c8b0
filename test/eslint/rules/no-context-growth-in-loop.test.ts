import rule from "../../../src/eslint/rules/no-context-growth-in-loop.js";
import { testRule } from "../rule-tester.js";

testRule("no-context-growth-in-loop", rule, {
  typed: {
    valid: [
      {
        name: "a new variable per iteration",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const itemKey = createKey<string>("item");
declare function handle(ctx: Context): Promise<void>;
export async function each(ctx: Context, items: string[]) {
  for (const item of items) {
    const itemCtx = withValue(ctx, itemKey, item);
    await handle(itemCtx);
  }
}`,
      },
      {
        name: "growth outside any loop is a plain derivation",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const a = createKey<number>("a");
export function f(ctx: Context) {
  ctx = withValue(ctx, a, 1);
  ctx = withValue(ctx, a, 2);
  return ctx;
}`,
      },
      {
        name: "reassigned from a fixed base in a loop",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const attempt = createKey<number>("attempt");
export function f(base: Context) {
  let ctx = base;
  for (let i = 0; i < 3; i++) ctx = withValue(base, attempt, i);
  return ctx;
}`,
      },
      {
        name: "a variable declared inside the loop",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const k = createKey<number>("k");
export function f(parent: Context, n: number) {
  for (let i = 0; i < n; i++) {
    let ctx = parent;
    ctx = withValue(ctx, k, i);
    void ctx;
  }
}`,
      },
      {
        name: "a local variable inside the callback",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function f(ctx: Context, ids: string[]) {
  return ids.map((id) => {
    let c = ctx;
    const [child, cancel] = withTimeout(c, 100);
    c = child;
    cancel();
    return id + String(c);
  });
}`,
      },
      {
        name: "a derived pair into new names in a loop",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function retry(ctx: Context, f: (ctx: Context) => Promise<void>) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const [attemptCtx, cancel] = withTimeout(ctx, 1_000);
    try { await f(attemptCtx); return; } catch { continue; } finally { cancel(); }
  }
}`,
      },
      {
        name: "a non-taproot function named withValue",
        code: `
declare function withValue<T>(o: T, k: string, v: unknown): T;
export function f(o: object, keys: string[]) { for (const k of keys) o = withValue(o, k, 1); return o; }`,
      },
      {
        name: "a member assigned from another member",
        code: `
import { withoutCancel, type Context } from "taproot-context";
export class Req {
  constructor(public ctx: Context, public base: Context) {}
  reset(n: number) { for (let i = 0; i < n; i++) this.ctx = withoutCancel(this.base); }
}`,
      },
      {
        name: "deriving once in a handler registered in a loop, into a local",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const route = createKey<string>("route");
export function register(ctx: Context, routes: string[], on: (r: string, h: () => Context) => void) {
  for (const r of routes) on(r, () => withValue(ctx, route, r));
}`,
      },
      {
        name: "the same name in a nested function's own scope",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const k = createKey<number>("k");
export function f(ctx: Context) {
  return [1, 2].map((n) => { let ctx2 = ctx; ctx2 = withValue(ctx2, k, n); return ctx2; });
}`,
      },
    ],
    invalid: [
      {
        name: "withValue assigned back in a for-of loop",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const itemKey = createKey<string>("item");
declare function handle(ctx: Context): Promise<void>;
export async function each(ctx: Context, items: string[]) {
  for (const item of items) {
    ctx = withValue(ctx, itemKey, item);
    await handle(ctx);
  }
}`,
        errors: [{ messageId: "growth", line: 7 }],
      },
      {
        name: "namespace import in a while loop",
        code: `
import * as context from "taproot-context";
const k = context.createKey<number>("tick");
export function ticks(ctx: context.Context, n: number) {
  let i = 0;
  while (i < n) ctx = context.withValue(ctx, k, i++);
  return ctx;
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "a namespace import of a re-exporting module in a loop",
        code: `
import * as lib from "./lib/timeouts.js";
export function each(ctx: lib.Ctx, xs: number[]) {
  for (const x of xs) ctx = lib.attach(ctx, Symbol(), x);
  return ctx;
}`,
        errors: [{ messageId: "growth", line: 4 }],
      },
      {
        name: "withTimeout pair assigned back in a loop",
        code: `
import { withTimeout, type Context, type CancelFunc } from "taproot-context";
export function f(ctx: Context, n: number) {
  let cancel: CancelFunc | undefined;
  for (let i = 0; i < n; i++) {
    cancel?.();
    [ctx, cancel] = withTimeout(ctx, 100);
  }
  cancel?.();
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "an outer variable assigned in a callback",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const user = createKey<string>("user");
export function middleware(ctx: Context, on: (f: (name: string) => void) => void) {
  on((name) => { ctx = withValue(ctx, user, name); });
  return () => ctx;
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "a module-level context grown by a request handler",
        code: `
import { background, withValue, createKey } from "taproot-context";
const reqId = createKey<number>("reqId");
let ctx = background();
export function onRequest(id: number) { ctx = withValue(ctx, reqId, id); }`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "withoutCancel in a do-while",
        code: `
import { withoutCancel, type Context } from "taproot-context";
export function f(ctx: Context, more: () => boolean) {
  do { ctx = withoutCancel(ctx); } while (more());
  return ctx;
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "a member grown in a loop",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const k = createKey<number>("k");
export class Req {
  constructor(public ctx: Context) {}
  tag(n: number) { for (let i = 0; i < n; i++) this.ctx = withValue(this.ctx, k, i); }
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "forEach callback",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const header = createKey<string>("header");
export function headers(ctx: Context, names: string[]) {
  names.forEach((n) => { ctx = withValue(ctx, header, n); });
  return ctx;
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "aliased withCancel in a for-in loop",
        code: `
import { withCancel as child, type Context } from "taproot-context";
export function f(ctx: Context, o: Record<string, number>) {
  const stops: (() => void)[] = [];
  for (const k in o) { let stop; [ctx, stop] = child(ctx); stops.push(stop, () => k); }
  return stops;
}`,
        errors: [{ messageId: "growth" }],
      },
      {
        name: "an interval timer callback",
        code: `
import { withValue, createKey, background } from "taproot-context";
const tick = createKey<number>("tick");
let ctx = background();
let n = 0;
setInterval(() => { ctx = withValue(ctx, tick, n++); }, 1_000);`,
        errors: [{ messageId: "growth" }],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import { withValue } from "taproot-context";
export function f(ctx, xs) { for (const x of xs) { const c = withValue(ctx, "k", x); void c; } }`,
      },
    ],
    invalid: [
      {
        code: `
import { withValue } from "taproot-context";
export function f(ctx, xs) { for (const x of xs) ctx = withValue(ctx, "k", x); return ctx; }`,
        errors: [{ messageId: "growth" }],
      },
    ],
  },
});
