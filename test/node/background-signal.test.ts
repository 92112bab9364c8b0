import { test } from "node:test";
import assert from "node:assert/strict";
import { background } from "../../src/index.js";
import "../../src/node/index.js";

test("many listeners on background().signal raise no MaxListenersExceededWarning once taproot/node is loaded", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  const listeners = Array.from({ length: 50 }, () => () => {});
  try {
    for (const l of listeners) background().signal.addEventListener("abort", l);
    await new Promise((r) => setImmediate(r));
  } finally {
    for (const l of listeners) background().signal.removeEventListener("abort", l);
    process.off("warning", onWarning);
  }
  assert.deepEqual(
    warnings.map((w) => `${w.name}: ${w.message}`),
    [],
  );
});
