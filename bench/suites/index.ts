/** The suites, in the order a run takes them; `--only` names them. */
import type { Build } from "../build.js";
import { createCancel } from "./create-cancel.js";
import { heap } from "./heap.js";
import { hooksCost } from "./hooks.js";
import { listeners } from "./listeners.js";
import { rootsAndErr } from "./roots.js";
import { size } from "./size.js";
import { timeouts } from "./timeouts.js";
import { trees } from "./trees.js";
import { values } from "./values.js";

export const suites: Record<string, (build: Build) => Promise<void>> = {
  rootsAndErr,
  createCancel,
  timeouts,
  trees,
  values,
  heap,
  listeners,
  hooksCost,
  size,
};
