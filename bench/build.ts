/**
 * The build under test: a built dist directory, imported by URL, so that the
 * same suites measure this package's dist/ and, in processes of their own,
 * the "before" build that TAPROOT_BENCH_BEFORE names.
 *
 * The suites use the package's public API, plus two things they used before
 * the bench was split up: `setDebugHooks` from dist/introspect.js (the hooks
 * suite; skipped if a build lacks it) and a context's own fields, read by
 * shape rather than by name (see fields.ts), for the floor of the tree walk
 * and the check that a fresh child holds no Promise or AbortController.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type * as Core from "../src/index.js";
import { treeFields, type TreeFields } from "./fields.js";
import { settle, sink } from "./harness.js";

/** Core is the module a build's index.js exports: the public API. */
export type CoreModule = typeof Core;

/** Build is one built package, loaded. */
export interface Build {
  /** The dist directory. */
  dist: string;
  core: CoreModule;
  /** setDebugHooks from the build's introspect.js, or null if the build has none. */
  setDebugHooks: ((hooks: unknown) => unknown) | null;
  /** How the build links its tree, or null if the fields could not be told apart. */
  fields: TreeFields | null;
}

/** loadBuild imports the build in `dist`. */
export async function loadBuild(dist: string): Promise<Build> {
  const core = (await import(pathToFileURL(join(dist, "index.js")).href)) as CoreModule;
  let setDebugHooks: Build["setDebugHooks"] = null;
  const introspect = join(dist, "introspect.js");
  if (existsSync(introspect)) {
    const m = (await import(pathToFileURL(introspect).href)) as { setDebugHooks?: unknown };
    if (typeof m.setDebugHooks === "function") {
      setDebugHooks = m.setDebugHooks as (hooks: unknown) => unknown;
    }
  }
  return { dist, core, setDebugHooks, fields: treeFields(core) };
}

/**
 * exercise uses every kind of context and every lazy part once, as any
 * program does somewhere, before anything is timed. V8 specializes optimized
 * code on what it has seen so far (a field that has only ever held null,
 * say), and code measured before the first `.signal` or `done()` can be
 * faster than it is in real use: an earlier engine measured 75–85 ns for
 * create+cancel first thing, and 100–140 ns once `.signal` had been touched
 * elsewhere.
 */
export async function exercise({ core }: Build): Promise<void> {
  const [root, cancelRoot] = core.withCancel(core.background());
  const outside = new AbortController();
  // Keys made by createKey, as the README recommends: a lookup compares them by reference. A
  // program that also looks up strings makes V8 compare every level as a possible string
  // (value() at depth 100 then costs 3–5× as much).
  const k = core.createKey<number>("k");
  for (let i = 0; i < 1000; i++) {
    const [a, cancelA] = core.withCancelCause(root);
    const [b, cancelB] = core.withTimeout(a, 3_600_000);
    const [c, cancelC] = core.withSignal(core.withValue(b, k, i), outside.signal);
    const d = core.withoutCancel(c);
    sink.value ^= (c.signal.aborted ? 1 : 0) ^ (d.value(k) === i ? 0 : 1);
    void a.done();
    core.afterFunc(c, () => {});
    if (i % 2) cancelA(new Error("done"));
    cancelC();
    cancelB();
    cancelA();
  }
  cancelRoot();
  await settle();
}
