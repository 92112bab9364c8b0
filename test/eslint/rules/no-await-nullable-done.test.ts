import rule from "../../../src/eslint/rules/no-await-nullable-done.js";
import { testRule } from "../rule-tester.js";

const NEVER = "new Promise<never>(() => {})";

testRule("no-await-nullable-done", rule, {
  typed: {
    valid: [
      {
        name: "the context of a const pair is cancelable: its done() is never null",
        code: `
import { withCancel, type Context } from "taproot-context";
export async function f(parent: Context) {
  const [ctx, cancel] = withCancel(parent);
  setTimeout(cancel, 10);
  await ctx.done();
}`,
      },
      {
        name: "a request's context is cancelable",
        code: `
import type { IncomingMessage } from "node:http";
import { requestContext } from "taproot-context/node";
export async function onClose(req: IncomingMessage) {
  const ctx = requestContext(req);
  await ctx.done();
}`,
      },
      {
        name: "done() checked before it is awaited",
        code: `
import type { Context } from "taproot-context";
export async function waitDone(ctx: Context) {
  const done = ctx.done();
  if (done) await done;
}`,
      },
      {
        name: "the nil-channel form",
        code: `
import type { Context } from "taproot-context";
export async function block(ctx: Context) { await (ctx.done() ?? ${NEVER}); }`,
      },
      {
        name: "the nil-channel form in a race",
        code: `
import type { Context } from "taproot-context";
export function first<T>(ctx: Context, work: Promise<T>) {
  return Promise.race([work, ctx.done() ?? ${NEVER}]);
}`,
      },
      {
        name: "sleep instead of done",
        code: `
import { sleep, type Context } from "taproot-context";
export async function pause(ctx: Context) { await sleep(ctx, 1_000); }`,
      },
      {
        name: "a done() that is never null",
        code: `
interface Job { done(): Promise<void> }
export async function finish(job: Job) { await job.done(); }`,
      },
      {
        name: "a context whose own type says done() is not null",
        code: `
import type { Context } from "taproot-context";
interface CancelableContext extends Context { done(): Promise<void> }
export async function wait(ctx: CancelableContext) { await ctx.done(); }`,
      },
      {
        name: "done() with then on a guarded value",
        code: `
import type { Context } from "taproot-context";
export function onDone(ctx: Context, f: () => void) { ctx.done()?.then(f); }`,
      },
      {
        name: "Promise.all does not settle early on null",
        code: `
import type { Context } from "taproot-context";
export async function all(a: Context, b: Context) { await Promise.all([a.done(), b.done()]); }`,
      },
      {
        name: "awaiting the abort event of the signal",
        code: `
import { once } from "node:events";
import type { Context } from "taproot-context";
export async function aborted(ctx: Context) { await once(ctx.signal, "abort"); }`,
      },
      {
        name: "a stream's done()",
        code: `
declare const writer: { done(): Promise<void> | undefined };
export async function close() { await writer.done(); }`,
      },
    ],
    invalid: [
      {
        name: "await ctx.done() with a parameter",
        code: `
import type { Context } from "taproot-context";
export async function waitDone(ctx: Context) { await ctx.done(); }`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type { Context } from "taproot-context";
export async function waitDone(ctx: Context) { await (ctx.done() ?? ${NEVER}); }`,
              },
            ],
          },
        ],
      },
      {
        name: "namespace type",
        code: `
import type * as context from "taproot-context";
export async function worker(ctx: context.Context) {
  await ctx.done();
  return ctx.err();
}`,
        errors: [
          {
            messageId: "awaitDone",
            line: 4,
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type * as context from "taproot-context";
export async function worker(ctx: context.Context) {
  await (ctx.done() ?? ${NEVER});
  return ctx.err();
}`,
              },
            ],
          },
        ],
      },
      {
        name: "a derived context",
        code: `
import { withValue, createKey, type Context } from "taproot-context";
const k = createKey<number>("k");
export async function f(parent: Context) {
  const ctx = withValue(parent, k, 1);
  await ctx.done();
}`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import { withValue, createKey, type Context } from "taproot-context";
const k = createKey<number>("k");
export async function f(parent: Context) {
  const ctx = withValue(parent, k, 1);
  await (ctx.done() ?? ${NEVER});
}`,
              },
            ],
          },
        ],
      },
      {
        name: "the background context never finishes",
        code: `
import { background } from "taproot-context";
export async function forever() { await background().done(); }`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import { background } from "taproot-context";
export async function forever() { await (background().done() ?? ${NEVER}); }`,
              },
            ],
          },
        ],
      },
      {
        name: "in a race",
        code: `
import type { Context } from "taproot-context";
export function first<T>(ctx: Context, work: Promise<T>) { return Promise.race([work, ctx.done()]); }`,
        errors: [
          {
            messageId: "raceDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type { Context } from "taproot-context";
export function first<T>(ctx: Context, work: Promise<T>) { return Promise.race([work, ctx.done() ?? ${NEVER}]); }`,
              },
            ],
          },
        ],
      },
      {
        name: "in Promise.any",
        code: `
import type { Context } from "taproot-context";
export function any(ctx: Context, a: Promise<void>) { return Promise.any([ctx.done(), a]); }`,
        errors: [
          {
            messageId: "raceDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type { Context } from "taproot-context";
export function any(ctx: Context, a: Promise<void>) { return Promise.any([ctx.done() ?? ${NEVER}, a]); }`,
              },
            ],
          },
        ],
      },
      {
        name: "a class method awaiting its parameter",
        code: `
import type { Context } from "taproot-context";
export class Server {
  async serve(ctx: Context) {
    await ctx.done();
    await this.close();
  }
  async close() {}
}`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type { Context } from "taproot-context";
export class Server {
  async serve(ctx: Context) {
    await (ctx.done() ?? ${NEVER});
    await this.close();
  }
  async close() {}
}`,
              },
            ],
          },
        ],
      },
      {
        name: "a context constrained by a type parameter",
        code: `
import type { Context } from "taproot-context";
export async function drain<C extends Context>(ctx: C) { await ctx.done(); }`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type { Context } from "taproot-context";
export async function drain<C extends Context>(ctx: C) { await (ctx.done() ?? ${NEVER}); }`,
              },
            ],
          },
        ],
      },
      {
        name: "a user's own context type named Context",
        code: `
interface Context { done(): Promise<void> | null; err(): Error | null; readonly signal: AbortSignal }
export async function f(ctx: Context) { await ctx.done(); }`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
interface Context { done(): Promise<void> | null; err(): Error | null; readonly signal: AbortSignal }
export async function f(ctx: Context) { await (ctx.done() ?? ${NEVER}); }`,
              },
            ],
          },
        ],
      },
      {
        name: "a context returned by a function",
        code: `
import { withoutCancel, type Context } from "taproot-context";
export async function f(ctx: Context) { await withoutCancel(ctx).done(); }`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import { withoutCancel, type Context } from "taproot-context";
export async function f(ctx: Context) { await (withoutCancel(ctx).done() ?? ${NEVER}); }`,
              },
            ],
          },
        ],
      },
    ],
  },
  untyped: {
    valid: [
      { code: `export async function f(job: { done(): Promise<void> }) { await job.done(); }` },
    ],
    invalid: [
      {
        code: `
import type { Context } from "taproot-context";
export async function f(ctx: Context) { await ctx.done(); }`,
        errors: [
          {
            messageId: "awaitDone",
            suggestions: [
              {
                messageId: "waitForever",
                output: `
import type { Context } from "taproot-context";
export async function f(ctx: Context) { await (ctx.done() ?? ${NEVER}); }`,
              },
            ],
          },
        ],
      },
    ],
  },
});
