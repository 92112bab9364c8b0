import rule from "../../../src/eslint/rules/no-stored-context.js";
import { testRule } from "../rule-tester.js";

testRule("no-stored-context", rule, {
  typed: {
    valid: [
      {
        name: "the context passed to each method",
        code: `
import type { Context } from "taproot-context";
export class UserRepo {
  constructor(private readonly baseUrl: string) {}
  async find(ctx: Context, id: string) {
    return fetch(this.baseUrl + "/users/" + id, { signal: ctx.signal });
  }
}`,
      },
      {
        name: "a local variable",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function run(parent: Context) {
  const [ctx, cancel] = withTimeout(parent, 100);
  try { return String(ctx); } finally { cancel(); }
}`,
      },
      {
        name: "a class implementing Context holds its parent",
        code: `
import type { Context } from "taproot-context";
export class TraceContext implements Context {
  constructor(private readonly parent: Context, readonly traceId: string) {}
  deadline() { return this.parent.deadline(); }
  done() { return this.parent.done(); }
  err() { return this.parent.err(); }
  value(key: unknown) { return this.parent.value(key); }
  get signal() { return this.parent.signal; }
}`,
      },
      {
        name: "a class allowed by option",
        options: [{ allowClasses: ["IncomingRequest"] }],
        code: `
import type { Context } from "taproot-context";
export class IncomingRequest {
  constructor(readonly url: string, readonly ctx: Context) {}
}`,
      },
      {
        name: "a module-level root that is never reassigned",
        code: `
import { background } from "taproot-context";
export const root = background();`,
      },
      {
        name: "a cancel function kept, not the context",
        code: `
import { withCancel, background, type CancelFunc } from "taproot-context";
export class Worker {
  #stop: CancelFunc | undefined;
  start() { const [, stop] = withCancel(background()); this.#stop = stop; }
  stop() { this.#stop?.(); }
}`,
      },
      {
        name: "an array of contexts local to a function",
        code: `
import type { Context } from "taproot-context";
export function first(ctx: Context, more: Context[]) {
  const all: Context[] = [ctx, ...more];
  return all[0];
}`,
      },
      {
        name: "a module-level WeakSet and a WeakMap keyed by contexts",
        code: `
import type { Context } from "taproot-context";
export const seen: WeakSet<Context> = new WeakSet();
export const ids: WeakMap<Context, number> = new WeakMap();`,
      },
      {
        name: "a class field holding an array of something else",
        code: `
import type { Context } from "taproot-context";
export class Jobs { handlers: ((ctx: Context) => void)[] = []; names: string[] = []; }`,
      },
      {
        name: "a WeakMap keyed by context holds it weakly",
        code: `
import type { Context } from "taproot-context";
const births = new WeakMap<Context, { at: number }>();
export function born(ctx: Context) { births.set(ctx, { at: Date.now() }); }`,
      },
      {
        name: "a Map of contexts local to a function",
        code: `
import type { Context } from "taproot-context";
export function byId(ctxs: [string, Context][]) {
  const m = new Map<string, Context>(ctxs);
  return m.size;
}`,
      },
      {
        name: "a field whose type is named Context but is not one",
        code: `
interface Context { user: string }
export class Koa { ctx: Context = { user: "x" }; }`,
      },
      {
        name: "an options object passed to a call",
        code: `
import type { Context } from "taproot-context";
declare function send(opts: { ctx: Context; to: string }): void;
export function notify(ctx: Context, to: string) { send({ ctx, to }); }`,
      },
      {
        name: "a signal kept for an event listener",
        code: `
import type { Context } from "taproot-context";
export class Subscription {
  #signal: AbortSignal;
  constructor(ctx: Context) { this.#signal = ctx.signal; }
  get aborted() { return this.#signal.aborted; }
}`,
      },
    ],
    invalid: [
      {
        name: "a class field",
        code: `
import type { Context } from "taproot-context";
export class Job {
  ctx: Context;
  constructor(ctx: Context) { this.ctx = ctx; }
}`,
        errors: [{ messageId: "stored", line: 4 }],
      },
      {
        name: "a constructor parameter property",
        code: `
import type { Context } from "taproot-context";
export class Mailer {
  constructor(private readonly ctx: Context, private readonly from: string) {}
  send(to: string) { return [this.ctx, this.from, to]; }
}`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "a private field initialized from background()",
        code: `
import * as context from "taproot-context";
export class Cache {
  #ctx = context.background();
  get ctx() { return this.#ctx; }
}`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "an undeclared this.x assignment",
        code: `
import type { Context } from "taproot-context";
export function Legacy(this: any, ctx: Context) { this.ctx = ctx; }`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "this.x assigned a context when the field x is typed unknown",
        code: `
import type { Context } from "taproot-context";
export class Server {
  private ctx: unknown;
  start(ctx: Context) {
    this.ctx = ctx;
  }
}`,
        errors: [{ messageId: "stored", line: 6 }],
      },
      {
        name: "this.x assigned a context when the field x has no type",
        code: `
import type { Context } from "taproot-context";
export class Server {
  private ctx;
  constructor(ctx: Context) {
    this.ctx = ctx;
  }
}`,
        errors: [{ messageId: "stored", line: 6 }],
      },
      {
        name: "a parameter property typed as a Context and assigned again is reported once",
        code: `
import type { Context } from "taproot-context";
export class Server {
  constructor(private ctx: Context) {}
  restart(ctx: Context) {
    this.ctx = ctx;
  }
}`,
        errors: [{ messageId: "stored", line: 4 }],
      },
      {
        name: "a static field",
        code: `
import { type Context, background } from "taproot-context";
export class App { static root: Context = background(); }`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "a module-level let written by a function",
        code: `
import type { Context } from "taproot-context";
let current: Context | undefined;
export function setCurrent(ctx: Context) { current = ctx; }
export function getCurrent() { return current; }`,
        errors: [{ messageId: "stored", line: 3 }],
      },
      {
        name: "an array of contexts in a class field",
        code: `
import type { Context } from "taproot-context";
export class Group { ctxs: Context[] = []; }`,
        errors: [
          {
            messageId: "stored",
            line: 3,
            data: { where: "the collection in the class field `ctxs`" },
          },
        ],
      },
      {
        name: "readonly arrays and generic array types in class fields",
        code: `
import type { Context } from "taproot-context";
export class Group {
  a: readonly Context[] = [];
  b: Array<Context> = [];
  c?: ReadonlyArray<Context>;
  d: Set<Context> | undefined;
}`,
        errors: [
          { messageId: "stored", line: 4 },
          { messageId: "stored", line: 5 },
          { messageId: "stored", line: 6 },
          { messageId: "stored", line: 7 },
        ],
      },
      {
        name: "a module-level const array of contexts pushed into",
        code: `
import type { Context } from "taproot-context";
export const list: Context[] = [];
export function add(ctx: Context) { list.push(ctx); }`,
        errors: [
          { messageId: "stored", line: 3, data: { where: "the module-level collection `list`" } },
        ],
      },
      {
        name: "an array of contexts whose type is inferred",
        code: `
import { background } from "taproot-context";
export class Pool { roots = [background(), background()]; }`,
        errors: [{ messageId: "stored", line: 3 }],
      },
      {
        name: "a collection type behind an alias",
        code: `
import type { Context } from "taproot-context";
type Contexts = Context[];
export class Group { members: Contexts = []; }`,
        errors: [{ messageId: "stored", line: 4 }],
      },
      {
        name: "a module-level Map of contexts with a written type is reported once",
        code: `
import type { Context } from "taproot-context";
export const inFlight: Map<string, Context> = new Map();`,
        errors: [{ messageId: "stored", line: 3 }],
      },
      {
        name: "a module-level Map of contexts",
        code: `
import type { Context } from "taproot-context";
const inFlight = new Map<string, Context>();
export function track(ctx: Context, id: string) { inFlight.set(id, ctx); }`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "a WeakMap holding contexts as values",
        code: `
import type { Context } from "taproot-context";
export const contextOf = new WeakMap<object, Context>();`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "a collection of contexts in a class field",
        code: `
import type { Context } from "taproot-context";
export class Registry {
  private readonly live = new Set<Context>();
  add(ctx: Context) { this.live.add(ctx); }
}`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "an accessor field",
        code: `
import type { Context } from "taproot-context";
export class Session {
  accessor ctx: Context | undefined;
}`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "a re-exported Context type",
        code: `
import type { Ctx } from "./lib/timeouts.js";
export class Holder { constructor(public ctx: Ctx) {} }`,
        errors: [{ messageId: "stored" }],
      },
      {
        name: "a field typed with a derived context",
        code: `
import { withTimeout, background } from "taproot-context";
export class Poller { pair = withTimeout(background(), 1_000); ctx = this.pair[0]; }`,
        errors: [{ messageId: "stored", column: 64 }],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import type { Context } from "taproot-context";
export class A { run(ctx: Context) { return ctx; } }`,
      },
      {
        code: `
import type { Context } from "taproot-context";
export const seen: WeakSet<Context> = new WeakSet();
export function f(ctxs: Context[]) { const copy: Context[] = [...ctxs]; return copy; }`,
      },
    ],
    invalid: [
      {
        code: `
import type { Context } from "taproot-context";
export class A { ctx?: Context; }`,
        errors: [{ messageId: "stored" }],
      },
      {
        code: `
import type { Context } from "taproot-context";
export class G { ctxs: Context[] = []; }
export const list: readonly Context[] = [];`,
        errors: [
          { messageId: "stored", line: 3 },
          { messageId: "stored", line: 4 },
        ],
      },
      {
        code: `
import type { Context } from "taproot-context";
export class Server {
  private ctx: any;
  constructor(ctx: Context) {
    this.ctx = ctx;
  }
}`,
        errors: [{ messageId: "stored", line: 6 }],
      },
    ],
  },
});
