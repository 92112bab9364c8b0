/**
 * taproot/testing: checks that keep context plumbing honest while you
 * develop and test.
 *
 * - {@link checkLeaks} and {@link trackContexts} fail a test that leaves
 *   live contexts behind, with a report naming each one, its age and where
 *   it was created. Plain functions: node:test, Vitest and Jest alike.
 * - {@link installGuard} warns at run time when a context accumulates too
 *   many live children or a cancel function is lost. On in development, off
 *   in production; `TAPROOT_DEBUG=1` turns it on anywhere, `TAPROOT_DEBUG=0`
 *   off. With `TAPROOT_DEBUG=1`, importing this module installs it, so
 *   `TAPROOT_DEBUG=1 node --import taproot/testing app.js` needs no code
 *   change.
 * - {@link inspectTree} and {@link snapshotTree} show the live tree under a
 *   context, for a debug endpoint or a log line.
 *
 * Node.js only (it uses `node:v8` to force garbage collection and `process`
 * warnings).
 *
 * @example
 * ```ts
 * import { test } from "node:test";
 * import { checkLeaks } from "taproot-context/testing";
 *
 * test("search stops its workers", () =>
 *   checkLeaks(async () => {
 *     await search(background(), "query");
 *   }));
 * ```
 *
 * @packageDocumentation
 */

import { installGuard, debugEnabled } from "./guard.js";

// Leak checks
export type { Leak, LeakTracker, TrackOptions } from "./track.js";
export { checkLeaks, trackContexts, LeakError } from "./track.js";

// Runtime guard
export type { Guard, GuardOptions, TaprootWarning } from "./guard.js";
export { installGuard, debugEnabled, TOO_MANY_CHILDREN, LOST_CANCEL } from "./guard.js";

// Seeing the tree
export type { ContextNode, TreeOptions } from "./tree.js";
export { inspectTree, snapshotTree } from "./tree.js";

// TAPROOT_DEBUG=1 asks for the guard without a code change (node --import taproot/testing).
if (/^(1|true|on|yes)$/i.test(process.env.TAPROOT_DEBUG?.trim() ?? "") && debugEnabled()) {
  installGuard();
}
