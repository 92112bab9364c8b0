/**
 * taproot-context/testing's view of the tree: the core's tree module
 * (src/tree.ts, src/tree-text.ts), which also serves taproot-context/node's
 * debug page, with the ages and creation sites that this subpath's trackers
 * and guard record.
 */
import { setBirthLookup } from "../tree.js";
import { birthOf } from "./hooks.js";

export type { ContextNode, TreeOptions } from "../tree.js";
export { printValue, snapshotTree } from "../tree.js";
export { describeNode, inspectTree, renderTree } from "../tree-text.js";

// Snapshots show the ages and sites recorded here, wherever they are taken.
setBirthLookup(birthOf);
