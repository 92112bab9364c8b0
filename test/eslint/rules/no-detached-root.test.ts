import rule from "../../../src/eslint/rules/no-detached-root.js";
import { testRule } from "../rule-tester.js";

testRule("no-detached-root", rule, {
  typed: {
    valid: [
      {
        name: "background() in main",
        code: `
import { background, withCancel } from "taproot-context";
export async function main() {
  const [ctx, cancel] = withCancel(background());
  process.once("SIGINT", cancel);
  return ctx;
}`,
      },
      {
        name: "background() at module level",
        code: `
import { background } from "taproot-context";
export const root = background();`,
      },
      {
        name: "the received context is passed on",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function load(ctx: Context) { return withTimeout(ctx, 1_000); }`,
      },
      {
        name: "withoutCancel for work that outlives the caller",
        code: `
import { withoutCancel, type Context } from "taproot-context";
declare function audit(ctx: Context, event: string): Promise<void>;
export function onLogin(ctx: Context, user: string) { void audit(withoutCancel(ctx), "login " + user); }`,
      },
      {
        name: "background() as the default value of the context parameter",
        code: `
import { background, type Context } from "taproot-context";
export function shutdown(ctx: Context = background()) { return ctx.err(); }`,
      },
      {
        name: "a function without a context parameter",
        code: `
import { background } from "taproot-context";
export function startCron(every: number) { return { ctx: background(), every }; }`,
      },
      {
        name: "a parameter that is not a Context",
        code: `
import { background } from "taproot-context";
export function worker(options: { concurrency: number }) { return [background(), options]; }`,
      },
      {
        name: "a type called Context from another library",
        code: `
import { background } from "taproot-context";
interface Context { state: object }
export function middleware(ctx: Context) { return [ctx.state, background()]; }`,
      },
      {
        name: "a server's setup function, not a handler",
        code: `
import { createServer } from "node:http";
import { background } from "taproot-context";
export function start(port: number) {
  const root = background();
  createServer(() => {}).listen(port);
  return root;
}`,
      },
      {
        name: "a background function from another library",
        code: `
import type { Context } from "taproot-context";
declare function background(): void;
export function f(ctx: Context) { background(); return ctx; }`,
      },
      {
        name: "a nested function with its own root, no context around",
        code: `
import { background, withTimeout } from "taproot-context";
export const jobs = [1, 2].map((n) => withTimeout(background(), n * 1000));`,
      },
    ],
    invalid: [
      {
        name: "the context's name is shadowed in a callback: no suggestion",
        code: `
import { background, sleep, type Context } from "taproot-context";
export function a(ctx: Context, items: string[]) {
  items.forEach((ctx) => { void sleep(background(), ctx.length); });
}`,
        errors: [
          {
            messageId: "detachedFromShadowedParameter",
            line: 4,
            data: { fn: "background", ctx: "ctx" },
            suggestions: [],
          },
        ],
      },
      {
        name: "the context is reachable from a callback whose own parameter has another name",
        code: `
import { background, sleep, type Context } from "taproot-context";
export function a(ctx: Context, items: string[]) {
  items.forEach((item) => { void sleep(background(), item.length); });
}`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, sleep, type Context } from "taproot-context";
export function a(ctx: Context, items: string[]) {
  items.forEach((item) => { void sleep(ctx, item.length); });
}`,
              },
            ],
          },
        ],
      },
      {
        name: "background() inside a function that receives ctx",
        code: `
import { background, type Context } from "taproot-context";
declare function query(ctx: Context, sql: string): Promise<unknown>;
export async function listUsers(ctx: Context) {
  return query(background(), "select * from users");
}`,
        errors: [
          {
            messageId: "detachedFromParameter",
            line: 5,
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, type Context } from "taproot-context";
declare function query(ctx: Context, sql: string): Promise<unknown>;
export async function listUsers(ctx: Context) {
  return query(ctx, "select * from users");
}`,
              },
            ],
          },
        ],
      },
      {
        name: "todo() inside a method that receives ctx (namespace import)",
        code: `
import * as context from "taproot-context";
export class Billing {
  charge(ctx: context.Context, cents: number) { return [context.todo(), cents]; }
}`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import * as context from "taproot-context";
export class Billing {
  charge(ctx: context.Context, cents: number) { return [ctx, cents]; }
}`,
              },
            ],
          },
        ],
      },
      {
        name: "inside a callback of a function that receives ctx",
        code: `
import { background, sleep, type Context } from "taproot-context";
export async function pollAll(ctx: Context, ids: string[]) {
  await Promise.all(ids.map(async () => sleep(background(), 100)));
  return ctx;
}`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, sleep, type Context } from "taproot-context";
export async function pollAll(ctx: Context, ids: string[]) {
  await Promise.all(ids.map(async () => sleep(ctx, 100)));
  return ctx;
}`,
              },
            ],
          },
        ],
      },
      {
        name: "an arrow function whose context is named parent",
        code: `
import { background, withTimeout, type Context } from "taproot-context";
export const derive = (parent: Context) => withTimeout(background(), 10);`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, withTimeout, type Context } from "taproot-context";
export const derive = (parent: Context) => withTimeout(parent, 10);`,
              },
            ],
          },
        ],
      },
      {
        name: "an unannotated handler parameter typed Context by its callback type",
        code: `
import { background, type Context } from "taproot-context";
declare function handle(route: string, h: (ctx: Context) => Promise<void>): void;
declare function save(ctx: Context): Promise<void>;
handle("/save", async (c) => save(background()));`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, type Context } from "taproot-context";
declare function handle(route: string, h: (ctx: Context) => Promise<void>): void;
declare function save(ctx: Context): Promise<void>;
handle("/save", async (c) => save(c));`,
              },
            ],
          },
        ],
      },
      {
        name: "a node:http request handler",
        code: `
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { background, sleep } from "taproot-context";
export function handler(req: IncomingMessage, res: ServerResponse) {
  void sleep(background(), 100).then(() => res.end(req.url));
}
createServer(handler);`,
        errors: [{ messageId: "detachedFromRequest" }],
      },
      {
        name: "an inline createServer callback (parameters typed by node:http)",
        code: `
import { createServer } from "node:http";
import * as context from "taproot-context";
createServer((req, res) => {
  void context.sleep(context.background(), 5).then(() => res.end(req.url));
});`,
        errors: [{ messageId: "detachedFromRequest" }],
      },
      {
        name: "an Express handler: its Request extends IncomingMessage",
        code: `
import type { Request, Response } from "express";
import { background, withTimeout } from "taproot-context";
export function getUser(req: Request, res: Response) {
  const [ctx, cancel] = withTimeout(background(), 5_000);
  res.on("close", cancel);
  res.json({ id: req.params.id, ctx: String(ctx) });
}`,
        errors: [{ messageId: "detachedFromRequest", line: 5 }],
      },
      {
        name: "a handler that has a request context",
        code: `
import { background } from "taproot-context";
import { requestContext } from "taproot-context/node";
declare function render(ctx: unknown): Promise<string>;
export async function page(req: any) {
  const ctx = requestContext(req);
  return [ctx, await render(background())];
}`,
        errors: [{ messageId: "detachedFromRequest" }],
      },
      {
        name: "a context parameter that is optional",
        code: `
import { background, type Context } from "taproot-context";
export function get(ctx?: Context) { return ctx ?? background(); }`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, type Context } from "taproot-context";
export function get(ctx?: Context) { return ctx ?? ctx; }`,
              },
            ],
          },
        ],
      },
      {
        name: "a Context type re-exported by the project",
        code: `
import { background } from "taproot-context";
import type { Ctx } from "./lib/timeouts.js";
export function f(ctx: Ctx) { return [ctx, background()]; }`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background } from "taproot-context";
import type { Ctx } from "./lib/timeouts.js";
export function f(ctx: Ctx) { return [ctx, ctx]; }`,
              },
            ],
          },
        ],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import { background } from "taproot-context";
export function f(options: object) { return [options, background()]; }`,
      },
    ],
    invalid: [
      {
        code: `
import { background, type Context } from "taproot-context";
export function f(ctx: Context, xs: string[]) { return xs.map((ctx) => [ctx, background()]); }`,
        errors: [{ messageId: "detachedFromShadowedParameter", suggestions: [] }],
      },
      {
        code: `
import { background, type Context } from "taproot-context";
export function f(ctx: Context) { return [ctx, background()]; }`,
        errors: [
          {
            messageId: "detachedFromParameter",
            suggestions: [
              {
                messageId: "passContext",
                output: `
import { background, type Context } from "taproot-context";
export function f(ctx: Context) { return [ctx, ctx]; }`,
              },
            ],
          },
        ],
      },
    ],
  },
});
