import assert from "node:assert/strict";
import { createHook } from "node:async_hooks";
import { describe, test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";

import fc from "fast-check";

import * as context from "../src/index.js";
import type { Context } from "../src/index.js";
import { flush, trackTimers } from "./helpers.js";

// Property tests of the tree invariants, against a model of Go's semantics:
// a context is done iff itself or an ancestor (up to a withoutCancel) was canceled or its
// effective deadline passed; err() never changes once set; done(), signal and err() agree;
// canceling never reaches a parent; cause() is the first cause on the path; canceled
// children are let go.

const bg = context.background();
const HOUR = 3_600_000;

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function name(err: unknown): string {
  if (err === context.Canceled) return "Canceled";
  if (err === context.DeadlineExceeded) return "DeadlineExceeded";
  if (err === null) return "null";
  if (err === undefined) return "undefined";
  if (err instanceof Error) return `Error(${err.message})`;
  return JSON.stringify(err) ?? String(err);
}

const KINDS = [
  "cancel",
  "cancelCause",
  "timeoutFar",
  "deadlineFar",
  "timeoutPast",
  "deadlinePast",
  "timeoutInfinity",
  "deadlineInfinity",
  "deadlineSoon",
  "value",
  "withoutCancel",
  "signal",
] as const;
type Kind = (typeof KINDS)[number];

const KEYS = [context.createKey<object>("k0"), "k1", Symbol("k2")] as const;
/** Causes handed to cancel functions; undefined and null mean Canceled. */
const CAUSES: unknown[] = [undefined, null, new Error("cause A"), { cause: "B" }, 0];
/** Causes given to the *Cause deadline variants (always set). */
const DEADLINE_CAUSES: unknown[] = [new Error("deadline cause C"), { cause: "D" }];

type Derive = {
  op: "derive";
  parent: number;
  kind: Kind;
  k: number;
  key: number;
  cause: number;
  useCause: boolean;
  sig: number;
};
type Cancel = { op: "cancel"; node: number; cause: number };
type Abort = { op: "abort"; sig: number; timeout: boolean };
type Touch = { op: "touch"; node: number; signal: boolean };
type Command = Derive | Cancel | Abort | Touch;

const commandArb = (kinds: readonly Kind[]): fc.Arbitrary<Command> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        op: fc.constant("derive" as const),
        parent: fc.nat(),
        kind: fc.constantFrom(...kinds),
        k: fc.nat({ max: 10 }),
        key: fc.nat({ max: KEYS.length - 1 }),
        cause: fc.nat({ max: DEADLINE_CAUSES.length - 1 }),
        useCause: fc.boolean(),
        sig: fc.nat({ max: 2 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant("cancel" as const),
        node: fc.nat(),
        cause: fc.nat({ max: CAUSES.length - 1 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("abort" as const),
        sig: fc.nat({ max: 2 }),
        timeout: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("touch" as const),
        node: fc.nat(),
        signal: fc.boolean(),
      }),
    },
  );

interface Node {
  label: string;
  ctx: Context;
  parent: Node | undefined;
  children: Node[];
  kind: Kind | "root";
  cancel: ((cause?: unknown) => void) | undefined;
  // The model.
  cancelable: boolean;
  err: Error | null;
  cause: unknown;
  deadline: number | undefined;
  values: Map<unknown, unknown>;
  sig?: number;
  soon?: { at: number; cause: unknown };
  // What the test touched.
  signal?: AbortSignal;
  done?: Promise<void>;
  firstErr?: Error;
}

class Tree {
  readonly nodes: Node[] = [];
  readonly controllers = [new AbortController(), new AbortController(), new AbortController()];
  readonly refs: WeakRef<object>[] = [];

  constructor(long: Context) {
    this.nodes.push(this.#node("background()", bg, undefined, "root", undefined, false));
    // A long-lived cancelable parent that outlives the run: nothing must stay attached to it.
    this.nodes.push(this.#node("long", long, undefined, "root", undefined, true));
  }

  #node(
    label: string,
    ctx: Context,
    parent: Node | undefined,
    kind: Kind | "root",
    cancel: Node["cancel"],
    cancelable: boolean,
  ): Node {
    const n: Node = {
      label,
      ctx,
      parent,
      children: [],
      kind,
      cancel,
      cancelable,
      err: parent?.err ?? null,
      cause: parent?.err ? parent.cause : null,
      deadline: parent?.deadline,
      values: new Map(parent?.values ?? []),
    };
    parent?.children.push(n);
    if (parent) this.refs.push(new WeakRef(ctx));
    return n;
  }

  /** The model's cancellation: first one wins, goes down to every descendant but stops at withoutCancel. */
  #cancelModel(n: Node, err: Error, cause: unknown): void {
    if (n.err !== null) return;
    n.err = err;
    n.cause = cause;
    for (const c of n.children) if (c.kind !== "withoutCancel") this.#cancelModel(c, err, cause);
  }

  derive(cmd: Derive, soonBase: number): void {
    const p = this.nodes[cmd.parent % this.nodes.length]!;
    const i = this.nodes.length;
    const now = Date.now();
    const label = `#${i} ${cmd.kind}(#${this.nodes.indexOf(p)})`;
    const dc = DEADLINE_CAUSES[cmd.cause];
    let made: [Context, Node["cancel"]];
    let own: number | undefined; // the child's own deadline, if any
    let bornDone: [Error, unknown] | undefined; // unless the parent is done
    switch (cmd.kind) {
      case "cancel":
        made = context.withCancel(p.ctx);
        break;
      case "cancelCause":
        made = context.withCancelCause(p.ctx);
        break;
      case "timeoutFar": {
        const ms = HOUR + cmd.k * 60_000;
        made = cmd.useCause
          ? context.withTimeoutCause(p.ctx, ms, dc)
          : context.withTimeout(p.ctx, ms);
        own = now + ms;
        break;
      }
      case "deadlineFar": {
        own = now + HOUR + cmd.k * 60_000;
        made = cmd.useCause
          ? context.withDeadlineCause(p.ctx, own, dc)
          : context.withDeadline(p.ctx, new Date(own));
        break;
      }
      case "timeoutPast": {
        const ms = -cmd.k * 1000;
        made = cmd.useCause
          ? context.withTimeoutCause(p.ctx, ms, dc)
          : context.withTimeout(p.ctx, ms);
        own = now + ms;
        bornDone = [context.DeadlineExceeded, cmd.useCause ? dc : context.DeadlineExceeded];
        break;
      }
      case "deadlinePast": {
        own = now - 1 - cmd.k * 60_000;
        made = cmd.useCause
          ? context.withDeadlineCause(p.ctx, own, dc)
          : context.withDeadline(p.ctx, own);
        bornDone = [context.DeadlineExceeded, cmd.useCause ? dc : context.DeadlineExceeded];
        break;
      }
      case "timeoutInfinity":
        made = cmd.useCause
          ? context.withTimeoutCause(p.ctx, Infinity, dc)
          : context.withTimeout(p.ctx, Infinity);
        break;
      case "deadlineInfinity":
        made = context.withDeadline(p.ctx, Infinity);
        break;
      case "deadlineSoon": {
        // Distinct per node, so the order in which timers fire is known.
        own = soonBase + 15 * i;
        made = cmd.useCause
          ? context.withDeadlineCause(p.ctx, own, dc)
          : context.withDeadline(p.ctx, own);
        break;
      }
      case "value": {
        const val = { node: i };
        const n = this.#node(
          label,
          context.withValue(p.ctx, KEYS[cmd.key], val),
          p,
          cmd.kind,
          undefined,
          p.cancelable,
        );
        n.values.set(KEYS[cmd.key], val);
        this.nodes.push(n);
        return;
      }
      case "withoutCancel": {
        const n = this.#node(label, context.withoutCancel(p.ctx), p, cmd.kind, undefined, false);
        n.err = null;
        n.cause = null;
        n.deadline = undefined;
        this.nodes.push(n);
        return;
      }
      case "signal": {
        const c = this.controllers[cmd.sig]!;
        made = context.withSignal(p.ctx, c.signal);
        if (c.signal.aborted) bornDone = signalErr(c.signal.reason);
        break;
      }
    }
    const n = this.#node(label, made[0], p, cmd.kind, made[1], true);
    if (cmd.kind === "signal") n.sig = cmd.sig;
    if (own !== undefined && (n.deadline === undefined || own <= n.deadline)) {
      // withDeadline never extends the parent's deadline.
      n.deadline = own;
      if (cmd.kind === "deadlineSoon")
        n.soon = { at: own, cause: cmd.useCause ? dc : context.DeadlineExceeded };
    }
    if (bornDone && n.err === null) this.#cancelModel(n, ...bornDone);
    this.nodes.push(n);
  }

  cancel(cmd: Cancel): void {
    const n = this.nodes[cmd.node % this.nodes.length]!;
    if (!n.cancel) return;
    const cause = CAUSES[cmd.cause];
    if (n.kind === "cancelCause") {
      n.cancel(cause);
      this.#cancelModel(n, context.Canceled, cause ?? context.Canceled);
    } else {
      n.cancel();
      this.#cancelModel(n, context.Canceled, context.Canceled);
    }
  }

  abort(cmd: Abort): void {
    const c = this.controllers[cmd.sig]!;
    if (c.signal.aborted) return;
    const reason = cmd.timeout
      ? new DOMException("timed out", "TimeoutError")
      : { aborted: cmd.sig };
    c.abort(reason);
    for (const n of this.nodes)
      if (n.kind === "signal" && n.sig === cmd.sig) this.#cancelModel(n, ...signalErr(reason));
  }

  touch(cmd: Touch): void {
    const n = this.nodes[cmd.node % this.nodes.length]!;
    if (cmd.signal) n.signal ??= n.ctx.signal;
    else n.done ??= n.ctx.done() ?? undefined;
  }

  run(cmd: Command, soonBase = 0): void {
    if (cmd.op === "derive") this.derive(cmd, soonBase);
    else if (cmd.op === "cancel") this.cancel(cmd);
    else if (cmd.op === "abort") this.abort(cmd);
    else this.touch(cmd);
  }

  /** The deadlines that passed, in the order their timers fire. */
  fireSoonDeadlines(): void {
    const soon = this.nodes.filter((n) => n.soon).sort((a, b) => a.soon!.at - b.soon!.at);
    for (const n of soon) this.#cancelModel(n, context.DeadlineExceeded, n.soon!.cause);
  }

  /** Checks every node against the model, synchronously. */
  check(when: string): void {
    for (const n of this.nodes) {
      const at = `${when}: ${n.label}`;
      const err = n.ctx.err();
      assert.equal(err, n.err, `${at}: err() = ${name(err)}, want ${name(n.err)}`);
      if (n.firstErr)
        assert.equal(
          err,
          n.firstErr,
          `${at}: err() changed from ${name(n.firstErr)} to ${name(err)}`,
        );
      if (err) n.firstErr = err;
      const cause = context.cause(n.ctx);
      const wantCause = n.err === null ? null : n.cause;
      assert.ok(
        Object.is(cause, wantCause),
        `${at}: cause() = ${name(cause)}, want ${name(wantCause)}`,
      );
      if (n.signal) {
        assert.equal(
          n.signal.aborted,
          n.err !== null,
          `${at}: signal.aborted = ${n.signal.aborted}, err() = ${name(err)}`,
        );
        assert.equal(
          n.signal.reason,
          n.err ?? undefined,
          `${at}: signal.reason = ${name(n.signal.reason)}, want err() = ${name(n.err)}`,
        );
      }
      const d = n.ctx.deadline()?.getTime();
      if (n.deadline === undefined || d === undefined) {
        assert.equal(d, n.deadline, `${at}: deadline() = ${String(d)}, want ${String(n.deadline)}`);
      } else {
        assert.ok(
          Math.abs(d - n.deadline) < 1000,
          `${at}: deadline() = ${d}, want about ${n.deadline}`,
        );
      }
      for (const key of KEYS) {
        const got = n.ctx.value(key);
        assert.equal(
          got,
          n.values.get(key),
          `${at}: value(${String(key)}) = ${JSON.stringify(got)}, want ${JSON.stringify(n.values.get(key))}`,
        );
      }
    }
  }

  /** Touches every signal and done(), lets microtasks run, and checks the three views agree. */
  async checkViews(when: string): Promise<void> {
    for (const n of this.nodes) {
      n.signal ??= n.ctx.signal;
      const p = n.ctx.done();
      assert.equal(
        p === null,
        !n.cancelable,
        `${when}: ${n.label}: done() ${p === null ? "is" : "is not"} null, want ${n.cancelable ? "a Promise" : "null"}`,
      );
      if (p) {
        n.done ??= p;
        assert.equal(p, n.done, `${when}: ${n.label}: done() returned a different Promise`);
      }
    }
    // Small flag objects only: a reaction on a pending done() must not keep the tree alive.
    const settled: [Node, { v: boolean }][] = [];
    for (const n of this.nodes) {
      if (!n.done) continue;
      const flag = { v: false };
      const label = n.label;
      settled.push([n, flag]);
      void n.done.then(
        () => (flag.v = true),
        () => assert.fail(`${label}: done() rejected`),
      );
    }
    await flush();
    for (const [n, { v }] of settled) {
      assert.equal(
        v,
        n.err !== null,
        `${when}: ${n.label}: done() ${v ? "resolved" : "pending"}, err() = ${name(n.ctx.err())}`,
      );
    }
    this.check(when);
  }

  /** Cancels everything this run made, as a well-behaved caller would. */
  cleanup(): void {
    for (const n of this.nodes) {
      if (!n.cancel) continue;
      n.cancel();
      this.#cancelModel(n, context.Canceled, context.Canceled);
    }
    for (const c of this.controllers) c.abort();
  }
}

/** fc.assert, with the failing assertion's message in the error (the test reporter hides causes). */
async function check<T>(
  property: fc.IAsyncPropertyWithHooks<T>,
  params: fc.Parameters<T>,
): Promise<void> {
  try {
    await fc.assert(property, params);
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (cause instanceof Error) (e as Error).message += `\n${cause.message}`;
    throw e;
  }
}

function signalErr(reason: unknown): [Error, unknown] {
  const timeout = (reason as { name?: unknown } | null)?.name === "TimeoutError";
  return [timeout ? context.DeadlineExceeded : context.Canceled, reason];
}

const SYNC_KINDS = KINDS.filter((k) => k !== "deadlineSoon");

describe("properties of random context trees", () => {
  test("random trees and cancel orders agree with the model after every step", async () => {
    const [long, cancelLong] = context.withCancel(bg);
    const refs: WeakRef<object>[] = [];
    let lastRun: WeakRef<object>[] = [];
    using timers = trackTimers(createHook);
    await check(
      fc.asyncProperty(
        fc.array(commandArb(SYNC_KINDS), { minLength: 1, maxLength: 60, size: "medium" }),
        async (cmds) => {
          const tree = new Tree(long);
          tree.check("at the start");
          for (const [i, cmd] of cmds.entries()) {
            tree.run(cmd);
            tree.check(`after command ${i} (${JSON.stringify(cmd)})`);
          }
          await tree.checkViews("after all commands");
          tree.cleanup();
          assert.equal(long.err(), null, "a descendant's cancel reached the long-lived parent");
          await tree.checkViews("after cleanup");
          // The last run's contexts may still be held by the runner's frames for a moment;
          // a leak through the live parent shows in every earlier run.
          refs.push(...lastRun);
          lastRun = tree.refs;
        },
      ),
      { numRuns: 200 },
    );
    assert.equal(
      await timers.pending(),
      0,
      "deadline timers still pending after every context was canceled",
    );
    for (let i = 0; i < 3; i++) {
      await flush();
      gc();
    }
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    assert.equal(
      alive,
      0,
      `${alive} of ${refs.length} canceled contexts still reachable from a live parent, want 0`,
    );
    cancelLong();
  });

  test("random trees with deadlines that pass agree with the model", async () => {
    const [long, cancelLong] = context.withCancel(bg);
    using timers = trackTimers(createHook);
    await check(
      fc.asyncProperty(
        fc
          .array(commandArb(KINDS), { minLength: 1, maxLength: 16 })
          .filter((cmds) => cmds.some((c) => c.op === "derive" && c.kind === "deadlineSoon")),
        async (cmds) => {
          const soonBase = Date.now() + 150;
          const tree = new Tree(long);
          for (const cmd of cmds) tree.run(cmd, soonBase);
          // The model assumes every command ran before the first deadline.
          fc.pre(Date.now() < soonBase - 50);
          tree.check("before any deadline");
          const last = Math.max(...tree.nodes.map((n) => n.soon?.at ?? 0));
          await delay(last - Date.now() + 300);
          tree.fireSoonDeadlines();
          await tree.checkViews("after the deadlines passed");
          tree.cleanup();
          await tree.checkViews("after cleanup");
        },
      ),
      { numRuns: 15 },
    );
    assert.equal(
      await timers.pending(),
      0,
      "deadline timers still pending after every context was done",
    );
    cancelLong();
  });
});
