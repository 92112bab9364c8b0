import rule from "../../../src/eslint/rules/lost-cancel.js";
import { testRule } from "../rule-tester.js";

testRule("lost-cancel", rule, {
  typed: {
    valid: [
      {
        name: "a method of the project's own named like a taproot function",
        code: `
import type { Context } from "taproot-context";
const helpers = { withTimeout: (ctx: Context, ms: number) => [ctx, ms] as const };
export function f(ctx: Context) {
  helpers.withTimeout(ctx, 5);
}`,
      },
      {
        name: "cancel called once the work is done",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function loadUser(parent: Context, id: string) {
  const [ctx, cancel] = withTimeout(parent, 5_000);
  const res = await fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
  cancel();
  return res.json();
}`,
      },
      {
        name: "cancel called in finally covers the early return",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function loadUser(parent: Context, id: string, cache: Map<string, unknown>) {
  const [ctx, cancel] = withTimeout(parent, 5_000);
  try {
    if (cache.has(id)) return cache.get(id);
    const res = await fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
    return await res.json();
  } finally {
    cancel();
  }
}`,
      },
      {
        name: "cancel called in finally covers a continue out of the try",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, urls: string[]) {
  for (const url of urls) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    try {
      if (url.endsWith(".pdf")) continue;
      await fetch(url, { signal: ctx.signal });
    } finally {
      cancel();
    }
  }
}`,
      },
      {
        name: "cancel called in finally covers a break out of the try",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, urls: string[]) {
  for (const url of urls) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    try {
      if (url === "stop") break;
      await fetch(url, { signal: ctx.signal });
    } finally {
      cancel();
    }
  }
}`,
      },
      {
        name: "cancel called in finally covers a continue in a while loop, from the catch block",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function drain(parent: Context, urls: string[]) {
  while (urls.length > 0) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    try {
      await fetch(urls.pop()!, { signal: ctx.signal });
    } catch {
      continue;
    } finally {
      cancel();
    }
  }
}`,
      },
      {
        name: "an outer finally that calls cancel covers a labeled continue through an inner one",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, sites: string[][]) {
  outer: for (const urls of sites) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    try {
      for (const url of urls) {
        try {
          if (url === "") continue outer;
          await fetch(url, { signal: ctx.signal });
        } finally {
          console.log(url);
        }
      }
    } finally {
      cancel();
    }
  }
}`,
      },
      {
        name: "cancel called in finally covers a break out of the try to the switch around it",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function fetchKind(parent: Context, kind: string, url: string) {
  switch (kind) {
    case "page": {
      const [ctx, cancel] = withTimeout(parent, 2_000);
      try {
        if (url === "") break;
        await fetch(url, { signal: ctx.signal });
      } finally {
        cancel();
      }
    }
  }
}`,
      },
      {
        name: "cancel held with using",
        code: `
import * as context from "taproot-context";
export async function ping(parent: context.Context, url: string) {
  const [ctx, cancel] = context.withTimeout(parent, 1_000);
  using _timeout = cancel;
  const res = await fetch(url, { signal: ctx.signal });
  return res.ok;
}`,
      },
      {
        name: "the pair is returned to the caller",
        code: `
import { withDeadline, type Context } from "taproot-context";
export function forJob(parent: Context, job: { deadline: Date }) {
  return withDeadline(parent, job.deadline);
}`,
      },
      {
        name: "cancel returned with a derived context",
        code: `
import { withCancelCause, type Context } from "taproot-context";
export function startWorker(parent: Context) {
  const [ctx, cancel] = withCancelCause(parent);
  queueMicrotask(() => void runLoop(ctx));
  return { ctx, stop: cancel };
}
declare function runLoop(ctx: Context): Promise<void>;`,
      },
      {
        name: "cancel stored on the instance that owns the work",
        code: `
import { withCancel, background, type CancelFunc } from "taproot-context";
export class Poller {
  #stop: CancelFunc | undefined;
  start() {
    const [ctx, cancel] = withCancel(background());
    this.#stop = cancel;
    void poll(ctx);
  }
  stop() { this.#stop?.(); }
}
declare function poll(ctx: unknown): Promise<void>;`,
      },
      {
        name: "cancel passed on to an event listener",
        code: `
import { withCancel, background } from "taproot-context";
import type { Server } from "node:http";
export function serve(server: Server) {
  const [ctx, cancel] = withCancel(background());
  server.on("close", cancel);
  return ctx;
}`,
      },
      {
        name: "cancel called on every branch",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function check(parent: Context, strict: boolean) {
  const [ctx, cancel] = withTimeout(parent, 2_000);
  if (strict) {
    cancel();
    return false;
  }
  await fetch("https://example.com/health", { signal: ctx.signal });
  cancel();
  return true;
}`,
      },
      {
        name: "cancel used in a callback that may run at any time",
        code: `
import { withSignal, type Context } from "taproot-context";
export function follow(parent: Context, signal: AbortSignal, done: Promise<void>) {
  const [ctx, cancel] = withSignal(parent, signal);
  void done.then(() => cancel());
  return ctx;
}`,
      },
      {
        name: "signalContext's stop called at shutdown",
        code: `
import { background } from "taproot-context";
import { signalContext } from "taproot-context/node";
export async function main(run: (ctx: unknown) => Promise<void>) {
  const [ctx, stop] = signalContext(background());
  try {
    await run(ctx);
  } finally {
    stop();
  }
}`,
      },
      {
        name: "a pair kept in a variable and used later",
        code: `
import { withTimeoutCause, type Context } from "taproot-context";
export function attempt(parent: Context) {
  const pair = withTimeoutCause(parent, 500, new Error("attempt took longer than 500 ms"));
  return pair;
}`,
      },
      {
        name: "a function named withTimeout that is not taproot's",
        code: `
function withTimeout<T>(p: Promise<T>, ms: number): [Promise<T>, () => void] {
  return [p, () => {}];
}
export async function f(p: Promise<number>) {
  const [value] = withTimeout(p, 10);
  return value;
}`,
      },
      {
        name: "cancel of a pair chosen by a condition called once the work is done",
        code: `
import { withTimeout, withCancel, type Context } from "taproot-context";
export async function load(parent: Context, url: string, slow: boolean) {
  const [ctx, cancel] = slow ? withCancel(parent) : withTimeout(parent, 1_000);
  try {
    return await fetch(url, { signal: ctx.signal });
  } finally {
    cancel();
  }
}`,
      },
      {
        name: "cancel bound by index in an object pattern and called",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function ping(parent: Context, url: string) {
  const { 0: ctx, 1: cancel } = withTimeout(parent, 1_000);
  using _timeout = cancel;
  return (await fetch(url, { signal: ctx.signal })).ok;
}`,
      },
      {
        name: "array pattern that is all rest keeps the cancel function",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function pair(parent: Context) {
  const [...both] = withTimeout(parent, 1_000);
  return both;
}`,
      },
      {
        name: "object pattern with a rest element keeps the cancel function",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function split(parent: Context) {
  const { 0: ctx, ...rest } = withTimeout(parent, 1_000);
  return { ctx, rest };
}`,
      },
    ],
    invalid: [
      {
        name: "discarded through a namespace import of a re-exporting module",
        code: `
import * as lib from "./lib/timeouts.js";
export function f(ctx: lib.Ctx) {
  lib.timeoutAfter(ctx, 5);
}`,
        errors: [
          {
            messageId: "discarded",
            line: 4,
            data: { fn: "withTimeout", held: "the timer and the parent's reference" },
          },
        ],
      },
      {
        name: "discarded through import = require()",
        code: `
import tp = require("taproot-context");
export function f(ctx: tp.Context) {
  tp.withTimeout(ctx, 5);
}`,
        errors: [{ messageId: "discarded", line: 4 }],
      },
      {
        name: "cancel left out of the destructuring",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function loadUser(parent: Context, id: string) {
  const [ctx] = withTimeout(parent, 5_000);
  return fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
}`,
        errors: [{ messageId: "discarded", line: 4 }],
      },
      {
        name: "the whole pair thrown away",
        code: `
import { withDeadline, type Context } from "taproot-context";
export function arm(parent: Context, at: Date) {
  withDeadline(parent, at);
}`,
        errors: [{ messageId: "discarded" }],
      },
      {
        name: "only the context taken by index",
        code: `
import { withCancel, type Context } from "taproot-context";
export function child(parent: Context) {
  return withCancel(parent)[0];
}`,
        errors: [{ messageId: "discarded" }],
      },
      {
        name: "cancel bound but never used",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function ping(parent: Context, url: string) {
  const [ctx, cancel] = withTimeout(parent, 1_000);
  const res = await fetch(url, { signal: ctx.signal });
  return res.ok;
}`,
        errors: [{ messageId: "neverUsed", line: 4 }],
      },
      {
        name: "early return skips the cancel call (namespace import)",
        code: `
import * as context from "taproot-context";
export async function loadUser(parent: context.Context, id: string, cache: Map<string, string>) {
  const [ctx, cancel] = context.withTimeout(parent, 5_000);
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  const res = await fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
  cancel();
  return res.text();
}`,
        errors: [
          { messageId: "notUsedOnAllPaths", line: 4 },
          { messageId: "returnWithoutCancel", line: 6 },
        ],
      },
      {
        name: "cancel only called on the error path",
        code: `
import { withCancelCause, type Context } from "taproot-context";
export async function run(parent: Context, job: (ctx: Context) => Promise<void>) {
  const [ctx, cancel] = withCancelCause(parent);
  try {
    await job(ctx);
  } catch (err) {
    cancel(err);
    throw err;
  }
}`,
        errors: [{ messageId: "notUsedOnAllPaths", line: 4 }],
      },
      {
        name: "continue in a loop skips the cancel call",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, urls: string[]) {
  for (const url of urls) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    if (url.endsWith(".pdf")) continue;
    await fetch(url, { signal: ctx.signal });
    cancel();
  }
}`,
        errors: [{ messageId: "notUsedOnAllPaths", line: 5 }],
      },
      {
        name: "continue before the try that calls cancel in finally",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, urls: string[]) {
  for (const url of urls) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    if (url.endsWith(".pdf")) continue;
    try {
      await fetch(url, { signal: ctx.signal });
    } finally {
      cancel();
    }
  }
}`,
        errors: [{ messageId: "notUsedOnAllPaths", line: 5 }],
      },
      {
        name: "break out of a try whose finally does not call cancel",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, urls: string[]) {
  for (const url of urls) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    try {
      if (url === "stop") break;
      await fetch(url, { signal: ctx.signal });
      cancel();
    } finally {
      console.log(url);
    }
  }
}`,
        errors: [{ messageId: "notUsedOnAllPaths", line: 5 }],
      },
      {
        name: "continue out of a try whose finally calls cancel on one branch only",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function crawl(parent: Context, urls: string[]) {
  for (const url of urls) {
    const [ctx, cancel] = withTimeout(parent, 2_000);
    try {
      if (url.endsWith(".pdf")) continue;
      await fetch(url, { signal: ctx.signal });
    } finally {
      if (url.startsWith("https:")) cancel();
    }
  }
}`,
        errors: [{ messageId: "notUsedOnAllPaths", line: 5 }],
      },
      {
        name: "aliased import, cancel named _",
        code: `
import { withSignal as fromSignal, type Context } from "taproot-context";
export async function handle(parent: Context, signal: AbortSignal) {
  const [ctx, _] = fromSignal(parent, signal);
  await fetch("https://example.com", { signal: ctx.signal });
}`,
        errors: [{ messageId: "neverUsed" }],
      },
      {
        name: "signalContext's stop discarded",
        code: `
import { background } from "taproot-context";
import { signalContext } from "taproot-context/node";
export async function main(run: (ctx: unknown) => Promise<void>) {
  const [ctx] = signalContext(background());
  await run(ctx);
}`,
        errors: [{ messageId: "discarded" }],
      },
      {
        name: "assignment to outer variables, cancel never called",
        code: `
import { withDeadlineCause, type Context } from "taproot-context";
export async function step(parent: Context, until: Date) {
  let ctx: Context;
  let cancel: () => void;
  [ctx, cancel] = withDeadlineCause(parent, until, new Error("step deadline"));
  await fetch("https://example.com/step", { signal: ctx.signal });
}`,
        errors: [{ messageId: "neverUsed", line: 6 }],
      },
      {
        name: "the pair kept in a variable that is never read",
        code: `
import { withCancel, type Context } from "taproot-context";
export function spawn(parent: Context) {
  const pair = withCancel(parent);
}`,
        errors: [{ messageId: "neverUsed" }],
      },
      {
        name: "a throw is fine, the fall-through end is not",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function save(parent: Context, body: string, dryRun: boolean) {
  const [ctx, cancel] = withTimeout(parent, 3_000);
  if (body.length === 0) {
    cancel();
    throw new Error("save(ctx, body): body is empty");
  }
  if (dryRun) {
    cancel();
    return;
  }
  await fetch("https://example.com", { method: "POST", body, signal: ctx.signal });
}`,
        errors: [{ messageId: "notUsedOnAllPaths", line: 4 }],
      },
      {
        name: "cancel never used when the pair is chosen by a condition",
        code: `
import { withTimeout, withCancel, type Context } from "taproot-context";
export function pick(parent: Context, slow: boolean) {
  const [ctx, cancel] = slow ? withCancel(parent) : withTimeout(parent, 1_000);
  return ctx;
}`,
        errors: [
          {
            messageId: "neverUsed",
            line: 4,
            data: {
              name: "cancel",
              fn: "withCancel",
              held: "the context and its parent's reference to it",
            },
          },
        ],
      },
      {
        name: "cancel never used when the pair is a fallback",
        code: `
import { withTimeout, type Context, type CancelFunc } from "taproot-context";
export function pick(parent: Context, cached: [Context, CancelFunc] | undefined) {
  const [ctx, cancel] = cached ?? withTimeout(parent, 1_000);
  return ctx;
}`,
        errors: [{ messageId: "neverUsed", line: 4 }],
      },
      {
        name: "cancel bound by index in an object pattern but never used",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function child(parent: Context) {
  const { 0: ctx, 1: cancel } = withTimeout(parent, 1_000);
  return ctx;
}`,
        errors: [{ messageId: "neverUsed", line: 4 }],
      },
      {
        name: "object pattern that binds only the context",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function child(parent: Context) {
  const { 0: ctx } = withTimeout(parent, 1_000);
  return ctx;
}`,
        errors: [{ messageId: "discarded", line: 4 }],
      },
      {
        name: "pairs chosen by a condition and both discarded",
        code: `
import { withTimeout, withCancel, type Context } from "taproot-context";
export function both(parent: Context, slow: boolean) {
  void (slow ? withCancel(parent) : withTimeout(parent, 1_000));
}`,
        errors: [
          { messageId: "discarded", line: 4 },
          { messageId: "discarded", line: 4 },
        ],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import { withCancel, background } from "taproot-context";
const [ctx, cancel] = withCancel(background());
process.on("SIGTERM", cancel);
export { ctx };`,
      },
    ],
    invalid: [
      {
        name: "discarded through import = require()",
        code: `
import tp = require("taproot-context");
export function f(ctx: tp.Context) {
  tp.withTimeout(ctx, 5);
}`,
        errors: [{ messageId: "discarded", line: 4 }],
      },
      {
        code: `
import { withCancel, background } from "taproot-context";
export const [ctx] = withCancel(background());`,
        errors: [{ messageId: "discarded" }],
      },
      {
        code: `
import * as context from "taproot-context";
export function f(parent: context.Context, ok: boolean) {
  const [ctx, cancel] = context.withTimeout(parent, 10);
  if (!ok) return null;
  cancel();
  return ctx;
}`,
        errors: [{ messageId: "notUsedOnAllPaths" }, { messageId: "returnWithoutCancel" }],
      },
      {
        name: "cancel never used when the pair is chosen by a condition",
        code: `
import { withTimeout, withCancel, type Context } from "taproot-context";
export function pick(parent: Context, slow: boolean) {
  const [ctx, cancel] = slow ? withCancel(parent) : withTimeout(parent, 1_000);
  return ctx;
}`,
        errors: [{ messageId: "neverUsed", line: 4 }],
      },
      {
        name: "cancel bound by index in an object pattern but never used",
        code: `
import { withTimeout, type Context } from "taproot-context";
export function child(parent: Context) {
  const { 0: ctx, 1: cancel } = withTimeout(parent, 1_000);
  return ctx;
}`,
        errors: [{ messageId: "neverUsed", line: 4 }],
      },
    ],
  },
});
