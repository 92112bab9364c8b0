import rule from "../../../src/eslint/rules/typed-keys.js";
import { testRule } from "../rule-tester.js";

testRule("typed-keys", rule, {
  typed: {
    valid: [
      {
        name: "a key made by createKey",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const userKey = createKey<{ id: string }>("user");
export function withUser(ctx: Context, id: string) { return withValue(ctx, userKey, { id }); }`,
      },
      {
        name: "namespace import",
        code: `
import * as context from "taproot-context";
const requestId = context.createKey<string>("requestId");
export const ctx = context.withValue(context.background(), requestId, "abc");`,
      },
      {
        name: "a unique symbol",
        code: `
import { withValue, background } from "taproot-context";
const traceKey = Symbol("trace");
export const ctx = withValue(background(), traceKey, 42);`,
      },
      {
        name: "a class instance as key",
        code: `
import { withValue, background } from "taproot-context";
class LoggerKey {}
const loggerKey = new LoggerKey();
export const ctx = withValue(background(), loggerKey, console);`,
      },
      {
        name: "looking up with a typed key",
        code: `
import { createKey, type Context } from "taproot-context";
const userKey = createKey<string>("user");
export function user(ctx: Context) { return ctx.value(userKey); }`,
      },
      {
        name: "a key imported from another module",
        code: `
import { withValue, type Context, type Key } from "taproot-context";
declare const localeKey: Key<string>;
export function f(ctx: Context) { return withValue(ctx, localeKey, "en"); }`,
      },
      {
        name: "a string value is fine",
        code: `
import { withValue, createKey, background } from "taproot-context";
const k = createKey<string>("k");
export const ctx = withValue(background(), k, "just a value");`,
      },
      {
        name: "a Map's value() method is not a context",
        code: `
declare const form: { value(name: string): string };
export const email = form.value("email");`,
      },
      {
        name: "a withValue of another library",
        code: `
declare function withValue(obj: object, key: string, v: unknown): object;
export const o = withValue({}, "a", 1);`,
      },
      {
        name: "an object key from a frozen registry",
        code: `
import { withValue, background } from "taproot-context";
const Keys = Object.freeze({ tenant: {} as object });
export const ctx = withValue(background(), Keys.tenant, "acme");`,
      },
    ],
    invalid: [
      {
        name: "a string literal",
        code: `
import { withValue, type Context } from "taproot-context";
export function withUser(ctx: Context, id: string) { return withValue(ctx, "user", id); }`,
        errors: [{ messageId: "untypedKey", column: 76 }],
      },
      {
        name: "a number literal (namespace import)",
        code: `
import * as context from "taproot-context";
export const ctx = context.withValue(context.background(), 1, "one");`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "Symbol.for",
        code: `
import { withValue, background } from "taproot-context";
export const ctx = withValue(background(), Symbol.for("app.user"), "ann");`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "a const holding a string",
        code: `
import { withValue, background } from "taproot-context";
const USER = "user";
export const ctx = withValue(background(), USER, "ann");`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "a const holding Symbol.for",
        code: `
import { withValue, background } from "taproot-context";
const TRACE = Symbol.for("trace");
export const ctx = withValue(background(), TRACE, 1);`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "a string-typed parameter",
        code: `
import { withValue, type Context } from "taproot-context";
export function tag(ctx: Context, name: string, value: string) { return withValue(ctx, name, value); }`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "a template literal",
        code: `
import { withValue, type Context } from "taproot-context";
export function f(ctx: Context, n: number) { return withValue(ctx, \`header-\${n}\`, n); }`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "a string enum member",
        code: `
import { withValue, type Context } from "taproot-context";
enum Keys { User = "user" }
export function f(ctx: Context) { return withValue(ctx, Keys.User, "ann"); }`,
        errors: [{ messageId: "untypedKey" }],
      },
      {
        name: "a lookup by string",
        code: `
import type { Context } from "taproot-context";
export function user(ctx: Context) { return ctx.value("user") as string | undefined; }`,
        errors: [{ messageId: "untypedLookup" }],
      },
      {
        name: "aliased import with a boolean key",
        code: `
import { withValue as put, background } from "taproot-context";
export const ctx = put(background(), true, "flag");`,
        errors: [{ messageId: "untypedKey" }],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import { withValue, background, createKey } from "taproot-context";
withValue(background(), createKey("k"), 1);`,
      },
    ],
    invalid: [
      {
        code: `
import { withValue, background } from "taproot-context";
withValue(background(), "k", 1);`,
        errors: [{ messageId: "untypedKey" }],
      },
    ],
  },
});
