import rule from "../../../src/eslint/rules/context-first.js";
import { testRule } from "../rule-tester.js";

testRule("context-first", rule, {
  typed: {
    valid: [
      {
        name: "a context first, named ctx",
        code: `
import type { Context } from "taproot-context";
export async function getUser(ctx: Context, id: string): Promise<unknown> {
  return fetch("/users/" + id, { signal: ctx.signal });
}`,
      },
      {
        name: "namespace type, arrow function",
        code: `
import * as context from "taproot-context";
export const save = async (ctx: context.Context, body: string) => body.length;`,
      },
      {
        name: "an unused context may start with an underscore",
        code: `
import type { Context } from "taproot-context";
export function noop(_ctx: Context, _reason: string) {}`,
      },
      {
        name: "methods and interface members",
        code: `
import type { Context } from "taproot-context";
export interface Store {
  get(ctx: Context, key: string): Promise<string | undefined>;
  put(ctx: Context, key: string, value: string): Promise<void>;
}
export class MemoryStore implements Store {
  #data = new Map<string, string>();
  async get(ctx: Context, key: string) { ctx.err(); return this.#data.get(key); }
  async put(ctx: Context, key: string, value: string) { ctx.err(); this.#data.set(key, value); }
}`,
      },
      {
        name: "a function type",
        code: `
import type { Context } from "taproot-context";
export type Handler = (ctx: Context, req: Request) => Promise<Response>;`,
      },
      {
        name: "the this parameter does not count",
        code: `
import type { Context } from "taproot-context";
export function bound(this: { name: string }, ctx: Context) { return this.name + String(ctx); }`,
      },
      {
        name: "a type called Context from another library",
        code: `
interface Context { request: Request; state: Record<string, unknown> }
export function middleware(next: () => Promise<void>, koaCtx: Context) { return next(); }`,
      },
      {
        name: "unannotated callback parameters are left to whoever declared the callback",
        code: `
import { background } from "taproot-context";
export const labels = [background()].map((index, c) => String(c) + String(index));`,
      },
      {
        name: "two contexts, the first one first",
        code: `
import type { Context } from "taproot-context";
export function merge(ctx: Context, other: Context): Context { return other.err() ? other : ctx; }`,
      },
      {
        name: "a type re-exported under another name is still known by its declaration",
        code: `
import type { Ctx } from "./lib/timeouts.js";
export function handle(ctx: Ctx, id: number) { return id; }`,
      },
      {
        name: "allowTypesBefore lets a test context come first",
        options: [{ allowTypesBefore: ["TestContext"] }],
        code: `
import type { TestContext } from "node:test";
import type { Context } from "taproot-context";
export async function withServer(t: TestContext, ctx: Context) { t.diagnostic(String(ctx)); }`,
      },
      {
        name: "custom names",
        options: [{ names: ["ctx", "parent"] }],
        code: `
import type { Context } from "taproot-context";
export function derive(parent: Context, label: string) { return label + String(parent); }`,
      },
    ],
    invalid: [
      {
        name: "context after the id",
        code: `
import type { Context } from "taproot-context";
export async function getUser(id: string, ctx: Context) {
  return fetch("/users/" + id, { signal: ctx.signal });
}`,
        errors: [{ messageId: "notFirst", line: 3, column: 43 }],
      },
      {
        name: "context last in a method",
        code: `
import type { Context } from "taproot-context";
export class Mailer {
  async send(to: string, body: string, ctx: Context) { return to + body + String(ctx); }
}`,
        errors: [{ messageId: "notFirst" }],
      },
      {
        name: "context in the middle of an interface method",
        code: `
import * as context from "taproot-context";
export interface Queue {
  push(job: string, ctx: context.Context, priority: number): Promise<void>;
}`,
        errors: [{ messageId: "notFirst" }],
      },
      {
        name: "a function type with the context second",
        code: `
import type { Context } from "taproot-context";
export type Middleware = (req: Request, ctx: Context) => Promise<Response>;`,
        errors: [{ messageId: "notFirst" }],
      },
      {
        name: "first but named context",
        code: `
import type { Context } from "taproot-context";
export function audit(context: Context, event: string) { return event + String(context); }`,
        errors: [{ messageId: "badName" }],
      },
      {
        name: "first but named parent",
        code: `
import type { Context } from "taproot-context";
export const child = (parent: Context) => parent;`,
        errors: [{ messageId: "badName" }],
      },
      {
        name: "an optional context after other parameters",
        code: `
import type { Context } from "taproot-context";
export function retry(attempts: number, ctx?: Context) { return attempts + String(ctx); }`,
        errors: [{ messageId: "notFirst" }],
      },
      {
        name: "a re-exported Context type in the wrong place",
        code: `
import type { Ctx } from "./lib/timeouts.js";
export function handle(id: number, ctx: Ctx) { return id + String(ctx); }`,
        errors: [{ messageId: "notFirst" }],
      },
      {
        name: "an overload declaration",
        code: `
import type { Context } from "taproot-context";
export function lookup(key: string, ctx: Context): string;
export function lookup(ctx: Context, key: string): string;
export function lookup(a: unknown, b: unknown): string { return String(a) + String(b); }`,
        errors: [{ messageId: "notFirst", line: 3 }],
      },
      {
        name: "a user's own Context implementation passed second",
        code: `
import type { Context } from "taproot-context";
export class TraceContext implements Context {
  constructor(private readonly parent: Context, readonly traceId: string) {}
  deadline() { return this.parent.deadline(); }
  done() { return this.parent.done(); }
  err() { return this.parent.err(); }
  value(key: unknown) { return this.parent.value(key); }
  get signal() { return this.parent.signal; }
}
export function log(message: string, ctx: TraceContext) { return message + ctx.traceId; }`,
        errors: [
          { messageId: "badName", line: 4 },
          { messageId: "notFirst", line: 11 },
        ],
      },
      {
        name: "the declared callback type is reported, not the unannotated callback",
        code: `
import type { Context } from "taproot-context";
declare function route(path: string, h: (req: Request, ctx: Context) => Promise<Response>): void;
route("/", async (req, c) => new Response(req.url + String(c)));`,
        errors: [{ messageId: "notFirst", line: 3 }],
      },
      {
        name: "allowTypesBefore does not cover other types",
        options: [{ allowTypesBefore: ["TestContext"] }],
        code: `
import type { Context } from "taproot-context";
export function f(name: string, ctx: Context) { return name + String(ctx); }`,
        errors: [{ messageId: "notFirst" }],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
interface Context { done(): void }
export function f(id: string, c: Context) { return id + String(c); }`,
      },
    ],
    invalid: [
      {
        code: `
import type { Context } from "taproot-context";
export function f(id: string, ctx: Context) { return id + String(ctx); }`,
        errors: [{ messageId: "notFirst" }],
      },
      {
        code: `
import type * as context from "taproot-context";
export function f(c: context.Context) { return c; }`,
        errors: [{ messageId: "badName" }],
      },
    ],
  },
});
