import rule from "../../../src/eslint/rules/require-signal.js";
import { testRule } from "../rule-tester.js";

testRule("require-signal", rule, {
  typed: {
    valid: [
      {
        name: "fetch with the context's signal",
        code: `
import type { Context } from "taproot-context";
export async function getUser(ctx: Context, id: string) {
  return fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
}`,
      },
      {
        name: "fetch outside any function with a context",
        code: `
export async function health() { return (await fetch("https://example.com/health")).ok; }`,
      },
      {
        name: "fetch with an init object that carries a signal",
        code: `
import type { Context } from "taproot-context";
export async function post(ctx: Context, body: string) {
  const init: RequestInit = { method: "POST", body, signal: ctx.signal };
  return fetch("https://example.com", init);
}`,
      },
      {
        name: "fetch of a Request built with the context's signal",
        code: `
import type { Context } from "taproot-context";
export async function get(ctx: Context, url: string) {
  const req = new Request(url, { signal: ctx.signal });
  return fetch(req);
}
export async function getInline(ctx: Context, url: string) {
  return fetch(new Request(url, { signal: ctx.signal }));
}`,
      },
      {
        name: "fetch of a Request copied from one that carries the signal",
        code: `
import type { Context } from "taproot-context";
export async function retry(ctx: Context, url: string) {
  const first = new Request(url, { signal: ctx.signal });
  return fetch(new Request(first, { headers: { "x-retry": "1" } }));
}`,
      },
      {
        name: "fetch of a Request made elsewhere carries its maker's signal",
        code: `
import type { Context } from "taproot-context";
export async function forward(ctx: Context, req: Request) {
  return fetch(req);
}`,
      },
      {
        name: "a spread we cannot see into",
        code: `
import type { Context } from "taproot-context";
export function get(ctx: Context, url: string, init: RequestInit) { return fetch(url, { ...init }); }`,
      },
      {
        name: "timers/promises with a signal",
        code: `
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "taproot-context";
export async function backoff(ctx: Context, attempt: number) {
  await delay(2 ** attempt * 100, undefined, { signal: ctx.signal });
}`,
      },
      {
        name: "the global setTimeout is not the promise one",
        code: `
import type { Context } from "taproot-context";
export function later(ctx: Context, f: () => void) { return setTimeout(f, 10) && ctx; }`,
      },
      {
        name: "events.once with a signal (namespace import)",
        code: `
import * as events from "node:events";
import type { Context } from "taproot-context";
export async function ready(ctx: Context, server: import("node:events").EventEmitter) {
  await events.once(server, "listening", { signal: ctx.signal });
}`,
      },
      {
        name: "spawn with options carrying the signal",
        code: `
import { spawn } from "node:child_process";
import type { Context } from "taproot-context";
export function run(ctx: Context, cmd: string, args: string[]) {
  return spawn(cmd, args, { stdio: "inherit", signal: ctx.signal });
}`,
      },
      {
        name: "pipeline with the signal last",
        code: `
import { pipeline } from "node:stream/promises";
import type { Readable, Writable } from "node:stream";
import type { Context } from "taproot-context";
export async function copy(ctx: Context, from: Readable, to: Writable) {
  await pipeline(from, to, { signal: ctx.signal });
}`,
      },
      {
        name: "a taproot sleep already takes the context",
        code: `
import { sleep, type Context } from "taproot-context";
export async function pause(ctx: Context) { await sleep(ctx, 100); }`,
      },
      {
        name: "a function not on the list",
        code: `
import { readFile } from "node:fs/promises";
import type { Context } from "taproot-context";
export async function load(ctx: Context, path: string) { return [ctx, await readFile(path, "utf8")]; }`,
      },
      {
        name: "a local function named fetch",
        code: `
import type { Context } from "taproot-context";
function fetch(url: string) { return url; }
export function f(ctx: Context) { return [ctx, fetch("/x")]; }`,
      },
      {
        name: "globalThis.fetch with the context's signal",
        code: `
import type { Context } from "taproot-context";
export function f(ctx: Context, url: string) { return globalThis.fetch(url, { signal: ctx.signal }); }`,
      },
      {
        name: "a local object named window is not the global one",
        code: `
import type { Context } from "taproot-context";
const window = { fetch: (url: string) => url };
export function f(ctx: Context) { return [ctx, window.fetch("/x")]; }`,
      },
    ],
    invalid: [
      {
        name: "globalThis.fetch without options",
        code: `
import type { Context } from "taproot-context";
export async function getUser(ctx: Context, id: string) {
  return globalThis.fetch("https://api.example.com/users/" + id);
}`,
        errors: [
          {
            messageId: "missingSignal",
            data: { fn: "globalThis.fetch", ctx: "ctx" },
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function getUser(ctx: Context, id: string) {
  return globalThis.fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
}`,
              },
            ],
          },
        ],
      },
      {
        name: "window.fetch and self.fetch without a signal",
        code: `
import type { Context } from "taproot-context";
export async function both(ctx: Context, url: string) {
  await window.fetch(url, { method: "POST" });
  await self.fetch(url);
}`,
        errors: [
          {
            messageId: "missingSignal",
            line: 4,
            data: { fn: "window.fetch", ctx: "ctx" },
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function both(ctx: Context, url: string) {
  await window.fetch(url, { signal: ctx.signal, method: "POST" });
  await self.fetch(url);
}`,
              },
            ],
          },
          {
            messageId: "missingSignal",
            line: 5,
            data: { fn: "self.fetch", ctx: "ctx" },
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function both(ctx: Context, url: string) {
  await window.fetch(url, { method: "POST" });
  await self.fetch(url, { signal: ctx.signal });
}`,
              },
            ],
          },
        ],
      },
      {
        name: "the context's name is shadowed in a callback: no suggestion",
        code: `
import type { Context } from "taproot-context";
export function b(ctx: Context, urls: string[]) {
  return urls.map((ctx) => fetch(ctx));
}`,
        errors: [
          {
            messageId: "missingSignalShadowed",
            line: 4,
            data: { fn: "fetch", ctx: "ctx" },
            suggestions: [],
          },
        ],
      },
      {
        name: "a local context shadowed in a nested block: no suggestion",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function c(parent: Context, names: string[]) {
  const [ctx, cancel] = withTimeout(parent, 1_000);
  for (const ctx of names) await fetch("/users/" + ctx);
  cancel();
}`,
        errors: [{ messageId: "missingSignalShadowed", line: 5, suggestions: [] }],
      },
      {
        name: "fetch without options",
        code: `
import type { Context } from "taproot-context";
export async function getUser(ctx: Context, id: string) {
  return fetch("https://api.example.com/users/" + id);
}`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function getUser(ctx: Context, id: string) {
  return fetch("https://api.example.com/users/" + id, { signal: ctx.signal });
}`,
              },
            ],
          },
        ],
      },
      {
        name: "fetch of a Request built without a signal",
        code: `
import type { Context } from "taproot-context";
export async function get(ctx: Context, url: string) {
  const req = new Request(url, { method: "POST" });
  return fetch(req);
}`,
        errors: [
          {
            messageId: "missingSignal",
            line: 5,
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function get(ctx: Context, url: string) {
  const req = new Request(url, { method: "POST" });
  return fetch(req, { signal: ctx.signal });
}`,
              },
            ],
          },
        ],
      },
      {
        name: "fetch with options but no signal",
        code: `
import type { Context } from "taproot-context";
export async function post(ctx: Context, body: string) {
  return fetch("https://example.com", { method: "POST", body });
}`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function post(ctx: Context, body: string) {
  return fetch("https://example.com", { signal: ctx.signal, method: "POST", body });
}`,
              },
            ],
          },
        ],
      },
      {
        name: "timers/promises setTimeout, padded with undefined",
        code: `
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "taproot-context";
export async function backoff(ctx: Context) { await delay(100); }`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import { setTimeout as delay } from "node:timers/promises";
import type { Context } from "taproot-context";
export async function backoff(ctx: Context) { await delay(100, undefined, { signal: ctx.signal }); }`,
              },
            ],
          },
        ],
      },
      {
        name: "events.once (named import)",
        code: `
import { once } from "events";
import type { EventEmitter } from "node:events";
import type { Context } from "taproot-context";
export async function ready(ctx: Context, server: EventEmitter) { await once(server, "listening"); }`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import { once } from "events";
import type { EventEmitter } from "node:events";
import type { Context } from "taproot-context";
export async function ready(ctx: Context, server: EventEmitter) { await once(server, "listening", { signal: ctx.signal }); }`,
              },
            ],
          },
        ],
      },
      {
        name: "exec with options lacking a signal",
        code: `
import { exec } from "node:child_process";
import type { Context } from "taproot-context";
export function build(ctx: Context) { return exec("make", { cwd: "/src" }, () => {}); }`,
        errors: [{ messageId: "missingSignal" }],
      },
      {
        name: "spawn without options",
        code: `
import * as cp from "node:child_process";
import type { Context } from "taproot-context";
export function run(ctx: Context, args: string[]) { return cp.spawn("git", args); }`,
        errors: [{ messageId: "missingSignal" }],
      },
      {
        name: "pipeline without options",
        code: `
import { pipeline } from "node:stream/promises";
import type { Readable, Writable } from "node:stream";
import type { Context } from "taproot-context";
export async function copy(ctx: Context, from: Readable, to: Writable) { await pipeline(from, to); }`,
        errors: [{ messageId: "missingSignal" }],
      },
      {
        name: "a context from a derived local variable",
        code: `
import { withTimeout, type Context } from "taproot-context";
export async function load(parent: Context) {
  const [ctx, cancel] = withTimeout(parent, 1_000);
  try { return await fetch("https://example.com"); } finally { cancel(); }
}`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import { withTimeout, type Context } from "taproot-context";
export async function load(parent: Context) {
  const [ctx, cancel] = withTimeout(parent, 1_000);
  try { return await fetch("https://example.com", { signal: ctx.signal }); } finally { cancel(); }
}`,
              },
            ],
          },
        ],
      },
      {
        name: "inside a callback of a function with a context",
        code: `
import type { Context } from "taproot-context";
export async function fetchAll(ctx: Context, urls: string[]) {
  return Promise.all(urls.map((u) => fetch(u)));
}`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export async function fetchAll(ctx: Context, urls: string[]) {
  return Promise.all(urls.map((u) => fetch(u, { signal: ctx.signal })));
}`,
              },
            ],
          },
        ],
      },
      {
        name: "an init variable whose type has no signal",
        code: `
import type { Context } from "taproot-context";
export async function f(ctx: Context) {
  const init = { method: "DELETE" };
  return fetch("https://example.com/x", init);
}`,
        errors: [{ messageId: "missingSignal" }],
      },
      {
        name: "an additional function from options",
        options: [{ additionalFunctions: ["undici#request"] }],
        code: `
import { request } from "undici";
import type { Context } from "taproot-context";
export async function f(ctx: Context) { return request("https://example.com", { method: "GET" }); }`,
        errors: [{ messageId: "missingSignal" }],
      },
    ],
  },
  untyped: {
    valid: [
      {
        code: `
import type { Context } from "taproot-context";
export function f(ctx: Context, init: RequestInit) { return fetch("/x", init); }`,
      },
      {
        code: `
import type { Context } from "taproot-context";
export function f(ctx: Context, url: string) {
  const req = new Request(url, { signal: ctx.signal });
  return [fetch(req), fetch(new Request(url, { signal: ctx.signal }))];
}`,
      },
    ],
    invalid: [
      {
        code: `
import type { Context } from "taproot-context";
export function b(ctx: Context, urls: string[]) { return urls.map((ctx) => fetch(ctx)); }`,
        errors: [{ messageId: "missingSignalShadowed", suggestions: [] }],
      },
      {
        code: `
import type { Context } from "taproot-context";
export function f(ctx: Context, url: string) { return fetch(new Request(url)); }`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export function f(ctx: Context, url: string) { return fetch(new Request(url), { signal: ctx.signal }); }`,
              },
            ],
          },
        ],
      },
      {
        code: `
import type { Context } from "taproot-context";
export function f(ctx: Context) { return fetch("/x"); }`,
        errors: [
          {
            messageId: "missingSignal",
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export function f(ctx: Context) { return fetch("/x", { signal: ctx.signal }); }`,
              },
            ],
          },
        ],
      },
      {
        code: `
import type { Context } from "taproot-context";
export function f(ctx: Context) { return globalThis.fetch("/x"); }`,
        errors: [
          {
            messageId: "missingSignal",
            data: { fn: "globalThis.fetch", ctx: "ctx" },
            suggestions: [
              {
                messageId: "addSignal",
                output: `
import type { Context } from "taproot-context";
export function f(ctx: Context) { return globalThis.fetch("/x", { signal: ctx.signal }); }`,
              },
            ],
          },
        ],
      },
    ],
  },
});
