import type { Context } from "./context.js";

/**
 * DebugHooks lets `taproot-context/testing` watch contexts being created without the
 * core paying for it: while no hooks are installed, each creation costs one
 * null check.
 */
export interface DebugHooks {
  /** Called for every cancelable context, after it is linked to its parent, with the function that cancels it. */
  created(ctx: Context, cancel: (...args: never[]) => void): void;
  /** A parent whose live-children count passes this number triggers {@link DebugHooks.tooManyChildren}. */
  readonly childLimit: number;
  /** Called each time a link leaves `parent` with more than `childLimit` live children. */
  tooManyChildren(parent: Context, count: number): void;
}

/** The installed hooks; null (the default) means off. */
export let hooks: DebugHooks | null = null;

/** setDebugHooks installs hooks, or removes them with null, and returns the ones it replaced. */
export function setDebugHooks(h: DebugHooks | null): DebugHooks | null {
  const old = hooks;
  hooks = h;
  return old;
}
