/**
 * A canceled child leaves its parent's list of children: Go's
 * XTestCancelRemoves, read through the parent's live child count.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as context from "../src/index.js";
import { liveChildCount } from "../src/introspect.js";

/** children checks the parent's live child count, in got/want form. */
function children(parent: context.Context, want: number, when: string): void {
  const got = liveChildCount(parent);
  assert.equal(got, want, `${when}: the parent has ${got} live children, want ${want}`);
}

describe("a canceled child is removed from its parent", () => {
  const key = context.createKey<number>("k");
  const kinds: Array<[string, (parent: context.Context) => () => void]> = [
    ["withCancel", (p) => context.withCancel(p)[1]],
    [
      "withCancelCause",
      (p) => {
        const cancel = context.withCancelCause(p)[1];
        return () => cancel(new Error("done"));
      },
    ],
    ["withTimeout", (p) => context.withTimeout(p, 3_600_000)[1]],
    ["withDeadline", (p) => context.withDeadline(p, Date.now() + 3_600_000)[1]],
    ["withSignal", (p) => context.withSignal(p, new AbortController().signal)[1]],
    ["withCancel under a withValue", (p) => context.withCancel(context.withValue(p, key, 1))[1]],
    ["afterFunc (its stop)", (p) => context.afterFunc(p, () => {})],
  ];
  for (const [kind, make] of kinds) {
    test(kind, () => {
      const [parent, cancelParent] = context.withCancel(context.background());
      try {
        children(parent, 0, "before");
        const cancel = make(parent);
        children(parent, 1, `after ${kind}`);
        cancel();
        children(parent, 0, "after its cancel");
        cancel();
        children(parent, 0, "after a second cancel");
      } finally {
        cancelParent();
      }
    });
  }

  test("a grandchild goes with the child it hangs from", () => {
    const [parent, cancelParent] = context.withCancel(context.background());
    try {
      const [child, cancelChild] = context.withCancel(parent);
      const [, cancelGrandchild] = context.withCancel(child);
      children(parent, 1, "with a child and a grandchild");
      children(child, 1, "the child, with its own child");
      cancelChild();
      children(parent, 0, "after the child's cancel");
      children(child, 0, "the child, after its cancel");
      cancelGrandchild();
    } finally {
      cancelParent();
    }
  });

  test("siblings leave one by one, in any order", () => {
    const [parent, cancelParent] = context.withCancel(context.background());
    try {
      const cancels = Array.from({ length: 5 }, () => context.withCancel(parent)[1]);
      children(parent, 5, "with five children");
      for (const i of [2, 0, 4, 1, 3]) cancels[i]!();
      children(parent, 0, "after every child's cancel");
    } finally {
      cancelParent();
    }
  });
});
