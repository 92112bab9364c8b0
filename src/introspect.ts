/**
 * Read-only views of the tree for `taproot-context/testing` and `taproot-context/node`'s
 * debug page. Not part of the public API of `taproot-context`: the shapes may change
 * with any release.
 */
import type { Context } from "./context.js";
import { BaseCtx, deadlineOf } from "./context.js";
import { BackgroundCtx } from "./background.js";
import { CancelCtx } from "./cancel-ctx.js";
import { TimerCtx } from "./deadline.js";
import { SignalCtx } from "./signal.js";
import { ValueCtx } from "./value.js";
import { WithoutCancelCtx } from "./without-cancel.js";

export { setDebugHooks } from "./debug-hooks.js";
export type { DebugHooks } from "./debug-hooks.js";

/** What made a context. "foreign" is a user's own Context implementation. */
export type ContextKind =
  | "background"
  | "withCancel"
  | "withDeadline"
  | "withSignal"
  | "withValue"
  | "withoutCancel"
  | "foreign";

/**
 * kindOf tells which function made ctx, by its class. A cancelable context
 * of another kind that keeps a deadline of its own, earlier than its
 * parent's (a request context of taproot-context/fetch, whose deadline waits
 * in a shared queue instead of a timer), reads as a deadline context too.
 */
export function kindOf(ctx: Context): ContextKind {
  if (ctx instanceof CancelCtx) {
    if (ctx instanceof TimerCtx) return "withDeadline";
    if (ctx instanceof SignalCtx) return "withSignal";
    return hasOwnDeadline(ctx) ? "withDeadline" : "withCancel";
  }
  if (ctx instanceof ValueCtx) return "withValue";
  if (ctx instanceof WithoutCancelCtx) return "withoutCancel";
  if (ctx instanceof BackgroundCtx) return "background";
  return "foreign";
}

function hasOwnDeadline(ctx: CancelCtx): boolean {
  const parent = ctx._parent;
  return (
    ctx._deadline !== undefined &&
    parent !== null &&
    ctx._deadline !== deadlineOf("inspectTree(ctx)", parent)
  );
}

/** labelOf returns a context's own part of its toString() (".WithCancel", ".WithValue(k, v)"); null for a user's context. */
export function labelOf(ctx: Context): string | null {
  return ctx instanceof BaseCtx ? ctx._label() : null;
}

/** parentOf returns the parent of one of taproot's contexts; null for background and for user contexts. */
export function parentOf(ctx: Context): Context | null {
  return ctx instanceof BaseCtx ? ctx._parent : null;
}

/** isCancelable tells whether ctx is one of taproot's own cancelable contexts (the ones that own children). */
export function isCancelable(ctx: Context): boolean {
  return ctx instanceof CancelCtx;
}

/**
 * liveChildren returns the live cancelable contexts registered under ctx
 * (its direct children in the cancellation tree; value contexts in between
 * are skipped). Empty for contexts that are not cancelable nodes of taproot.
 */
export function liveChildren(ctx: Context): Context[] {
  const out: Context[] = [];
  if (ctx instanceof CancelCtx) {
    for (let c = ctx._head; c !== null; c = c._next) if (c instanceof CancelCtx) out.push(c);
  }
  return out;
}

/** liveChildCount returns how many children (contexts, afterFunc and sleep registrations) ctx holds now. */
export function liveChildCount(ctx: Context): number {
  let n = 0;
  if (ctx instanceof CancelCtx) for (let c = ctx._head; c !== null; c = c._next) n++;
  return n;
}
