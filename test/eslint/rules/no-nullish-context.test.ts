import rule from "../../../src/eslint/rules/no-nullish-context.js";
import { testRule } from "../rule-tester.js";

testRule("no-nullish-context", rule, {
  typed: {
    valid: [
      {
        name: "background() at a root",
        code: `
import { background, withTimeout } from "taproot-context";
export const pair = withTimeout(background(), 1_000);`,
      },
      {
        name: "the caller's context",
        code: `
import { withCancel, type Context } from "taproot-context";
export function child(ctx: Context) { return withCancel(ctx); }`,
      },
      {
        name: "todo() while the wiring is unfinished",
        code: `
import * as context from "taproot-context";
export const p = context.sleep(context.todo(), 10);`,
      },
      {
        name: "null for a parameter that is not a Context",
        code: `
import { withValue, createKey, background } from "taproot-context";
const user = createKey<string | null>("user");
export const ctx = withValue(background(), user, null);`,
      },
      {
        name: "a context narrowed from optional",
        code: `
import { background, withoutCancel, type Context } from "taproot-context";
export function detach(ctx?: Context) { return withoutCancel(ctx ?? background()); }`,
      },
      {
        name: "undefined for an optional non-context parameter",
        code: `
import type { Context } from "taproot-context";
declare function get(ctx: Context, url: string, init?: RequestInit): Promise<Response>;
export function f(ctx: Context) { return get(ctx, "/x", undefined); }`,
      },
      {
        name: "a user's own function taking a Context",
        code: `
import { background, type Context } from "taproot-context";
declare function listUsers(ctx: Context, limit: number): Promise<string[]>;
export const users = listUsers(background(), 10);`,
      },
      {
        name: "a type called Context from another library",
        code: `
interface Context { body: string }
declare function reply(ctx: Context | null): void;
reply(null);`,
      },
      {
        name: "a checked context after a guard",
        code: `
import { sleep, type Context } from "taproot-context";
export async function nap(ctx: Context | undefined) {
  if (!ctx) throw new TypeError("nap(ctx): ctx is undefined; pass background()");
  await sleep(ctx, 10);
}`,
      },
      {
        name: "new with a context",
        code: `
import { background, type Context } from "taproot-context";
class Client { constructor(readonly ctx: Context) {} }
export const c = new Client(background());`,
      },
    ],
    invalid: [
      {
        name: "null to withTimeout",
        code: `
import { withTimeout } from "taproot-context";
export const pair = withTimeout(null as any, 1_000);`,
        errors: [{ messageId: "nullish" }],
      },
      {
        name: "undefined to a function of the project",
        code: `
import type { Context } from "taproot-context";
declare function listUsers(ctx: Context | undefined, limit: number): Promise<string[]>;
export const users = listUsers(undefined, 10);`,
        errors: [{ messageId: "nullish", line: 4 }],
      },
      {
        name: "an any-typed value from a framework",
        code: `
import { withTimeout } from "taproot-context";
export function handler(req: any) { return withTimeout(req.ctx, 500); }`,
        errors: [{ messageId: "anyTyped" }],
      },
      {
        name: "a maybe-undefined context passed on",
        code: `
import type { Context } from "taproot-context";
declare function save(ctx?: Context): Promise<void>;
export function f(ctx?: Context) { return save(ctx); }`,
        errors: [{ messageId: "maybeNullish" }],
      },
      {
        name: "void 0 (namespace import)",
        code: `
import * as context from "taproot-context";
export const stop = context.afterFunc(void 0 as never, () => {});`,
        errors: [{ messageId: "nullish" }],
      },
      {
        name: "JSON.parse result",
        code: `
import { sleep } from "taproot-context";
export async function f(raw: string) { await sleep(JSON.parse(raw), 5); }`,
        errors: [{ messageId: "anyTyped" }],
      },
      {
        name: "a lookup in an any-typed registry",
        code: `
import { withCancel } from "taproot-context";
const contexts = new Map<string, any>();
export function child(id: string) { return withCancel(contexts.get(id)); }`,
        errors: [{ messageId: "anyTyped", line: 4 }],
      },
      {
        name: "a constructor taking a context",
        code: `
import type { Context } from "taproot-context";
class Client { constructor(readonly ctx?: Context) {} }
export const c = new Client(undefined);`,
        errors: [{ messageId: "nullish" }],
      },
      {
        name: "a rest parameter of contexts",
        code: `
import type { Context } from "taproot-context";
declare function firstDone(...ctxs: (Context | null)[]): Promise<void>;
export const p = firstDone(null, null);`,
        errors: [{ messageId: "nullish" }, { messageId: "nullish" }],
      },
      {
        name: "a re-exported context type",
        code: `
import type { Ctx } from "./lib/timeouts.js";
declare function handle(ctx: Ctx | null): void;
handle(null);`,
        errors: [{ messageId: "nullish" }],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import { withTimeout, background } from "taproot-context";
withTimeout(background(), 1);`,
      },
    ],
    invalid: [
      {
        code: `
import { withTimeout } from "taproot-context";
withTimeout(null, 1);`,
        errors: [{ messageId: "nullish" }],
      },
      {
        code: `
import * as context from "taproot-context";
context.sleep(undefined, 1);`,
        errors: [{ messageId: "nullish" }],
      },
    ],
  },
});
