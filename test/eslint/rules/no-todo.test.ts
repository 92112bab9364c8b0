import rule from "../../../src/eslint/rules/no-todo.js";
import { testRule } from "../rule-tester.js";

testRule("no-todo", rule, {
  typed: {
    valid: [
      {
        name: "background() at the root of main",
        code: `
import { background, withCancel } from "taproot-context";
const [ctx, cancel] = withCancel(background());
process.once("SIGTERM", cancel);
export { ctx };`,
      },
      {
        name: "the caller's context passed down",
        code: `
import type { Context } from "taproot-context";
declare function query(ctx: Context, sql: string): Promise<unknown[]>;
export async function listUsers(ctx: Context) { return query(ctx, "select * from users"); }`,
      },
      {
        name: "a local function named todo",
        code: `
const todo = (title: string) => ({ title, done: false });
export const item = todo("write the docs");`,
      },
      {
        name: "a todo method on another object",
        code: `
declare const tasks: { todo(title: string): void };
tasks.todo("ship it");`,
      },
      {
        name: "todo imported from another package",
        code: `
import { todo } from "node:test";
todo("later");`,
      },
      {
        name: "a reference to todo without a call",
        code: `
import { todo, background } from "taproot-context";
export const same = todo === background;`,
      },
      {
        name: "namespace import, background only",
        code: `
import * as context from "taproot-context";
export const root = context.background();`,
      },
      {
        name: "a string mentioning todo()",
        code: `export const note = "replace todo() with the request context";`,
      },
      {
        name: "withoutCancel of the request context",
        code: `
import { withoutCancel, type Context } from "taproot-context";
export function audit(ctx: Context) { return withoutCancel(ctx); }`,
      },
      {
        name: "a todo property on a taproot namespace-like object that is not taproot",
        code: `
const context = { todo: () => "not a context" };
export const x = context.todo();`,
      },
    ],
    invalid: [
      {
        name: "a named import",
        code: `
import { todo } from "taproot-context";
declare function sendEmail(ctx: unknown, to: string): Promise<void>;
export async function welcome(to: string) { await sendEmail(todo(), to); }`,
        errors: [{ messageId: "todo", line: 4 }],
      },
      {
        name: "a namespace import",
        code: `
import * as context from "taproot-context";
export const ctx = context.todo();`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "an aliased import",
        code: `
import { todo as placeholder } from "taproot-context";
export const ctx = placeholder();`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "a re-export under another name, known by its declaration",
        code: `
import { placeholderContext } from "./lib/timeouts.js";
export const ctx = placeholderContext();`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "a namespace import of a re-exporting module, known by its declaration",
        code: `
import * as lib from "./lib/timeouts.js";
export const ctx = lib.placeholderContext();`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "each placeholder is listed",
        code: `
import { todo, withTimeout } from "taproot-context";
export function a() { return withTimeout(todo(), 100); }
export function b() { return withTimeout(todo(), 200); }`,
        errors: [
          { messageId: "todo", line: 3 },
          { messageId: "todo", line: 4 },
        ],
      },
      {
        name: "todo as a default parameter",
        code: `
import { todo, type Context } from "taproot-context";
export function load(ctx: Context = todo(), id = 1) { return [ctx, id]; }`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "inside a class",
        code: `
import * as context from "taproot-context";
export class Repo {
  find(id: string) { return [context.todo(), id]; }
}`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "inside a test",
        code: `
import { todo, sleep } from "taproot-context";
export async function waitABit() { await sleep(todo(), 10); }`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "the subpath form of the package name",
        code: `
import { todo } from "taproot-context";
import { requestContext } from "taproot-context/node";
export const both = [todo, requestContext].length && todo();`,
        errors: [{ messageId: "todo" }],
      },
      {
        name: "wrapped in a non-null assertion and parentheses",
        code: `
import { todo } from "taproot-context";
export const ctx = (todo)()!;`,
        errors: [{ messageId: "todo" }],
      },
    ],
  },
  untyped: {
    valid: [{ code: `const todo = () => 1; todo();` }],
    invalid: [
      {
        code: `import { todo } from "taproot-context"; todo();`,
        errors: [{ messageId: "todo" }],
      },
    ],
  },
});
