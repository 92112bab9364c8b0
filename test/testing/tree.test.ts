import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import * as context from "../../src/index.js";
import { inspectTree, installGuard, snapshotTree, trackContexts } from "../../src/testing/index.js";
import { renderTree } from "../../src/tree-text.js";

const bg = context.background();

// A guard from the environment (TAPROOT_DEBUG=1) would add ages to the exact lines below.
before(() => installGuard({ enabled: false }));

describe("inspectTree", () => {
  test("renders the live subtree, one line per context, labels relative to the parent", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    const [dl, cancelDl] = context.withTimeout(root, 60_000);
    const user = context.createKey<string>("user");
    const [leaf, cancelLeaf] = context.withCancel(context.withValue(dl, user, "ann"));
    const [sib, cancelSib] = context.withCancel(root);
    try {
      const lines = inspectTree(root).split("\n");
      assert.equal(lines.length, 4, inspectTree(root));
      assert.equal(lines[0], "context.Background.WithCancel  withCancel · live · 2 children");
      // Newest child first: the list is kept newest at the head.
      assert.equal(lines[1], "├── .WithCancel  withCancel · live");
      assert.match(
        lines[2]!,
        /^└── \.WithDeadline\(\S+Z \[\S+\]\) {2}withDeadline · live · deadline in (59|1m)\S* · 1 child$/,
      );
      assert.match(
        lines[3]!,
        /^ {4}└── \.WithValue\(user, ann\)\.WithCancel {2}withCancel · live · deadline in \S+$/,
      );
      void leaf;
      void sib;
    } finally {
      cancelSib();
      cancelLeaf();
      cancelDl();
      cancelRoot();
    }
  });

  test("shows err and cause of a context that is done, and no children", () => {
    const [ctx, cancel] = context.withCancelCause(bg);
    context.withCancel(ctx);
    cancel(new RangeError("shutting down"));
    assert.equal(
      inspectTree(ctx),
      "context.Background.WithCancel  withCancel · done: context canceled (cause: RangeError: shutting down)",
    );
  });

  test("shows a root that can never be canceled as such", () => {
    assert.equal(inspectTree(bg), "context.Background  background · never canceled");
    assert.equal(
      inspectTree(context.withoutCancel(bg)),
      "context.Background.WithoutCancel  withoutCancel · never canceled",
    );
  });

  test("under a value layer, lists only the children created through it", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    const v = context.withValue(root, "tenant", "acme");
    const [, c1] = context.withCancel(v);
    const [, c2] = context.withCancel(root);
    try {
      assert.equal(
        inspectTree(v),
        [
          "context.Background.WithCancel.WithValue(tenant, acme)  withValue · live · 1 child",
          "└── .WithCancel  withCancel · live",
        ].join("\n"),
      );
    } finally {
      c1();
      c2();
      cancelRoot();
    }
  });

  test("counts afterFunc and sleep registrations apart from child contexts", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    const stop = context.afterFunc(root, () => {});
    try {
      assert.equal(
        inspectTree(root),
        "context.Background.WithCancel  withCancel · live · 1 waiting (afterFunc/sleep)",
      );
    } finally {
      stop();
      cancelRoot();
    }
  });

  test("stops at maxNodes and says how many it left out", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    for (let i = 0; i < 5; i++) context.withCancel(root);
    try {
      const lines = inspectTree(root, { maxNodes: 3 }).split("\n");
      assert.deepEqual(lines.slice(1), [
        "├── .WithCancel  withCancel · live",
        "├── .WithCancel  withCancel · live",
        "└── … 3 more",
      ]);
    } finally {
      cancelRoot();
    }
  });

  test("shows age when a tracker saw the context created", () => {
    const tracker = trackContexts();
    const [root, cancelRoot] = context.withCancel(bg);
    tracker.stop();
    try {
      const now = Date.now() + 1_500;
      assert.match(inspectTree(root, { now }), / · age 1\.5\d*s$/);
    } finally {
      cancelRoot();
    }
  });

  test("annotate names a context and gives its age when no tracker saw it created", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    const [req, cancelReq] = context.withCancel(root);
    try {
      const now = Date.now();
      const text = inspectTree(root, {
        now,
        annotate: (ctx) => (ctx === req ? { note: "GET /users/7", since: now - 250 } : undefined),
      });
      assert.equal(
        text.split("\n")[1],
        "└── .WithCancel  withCancel · GET /users/7 · live · age 250ms",
      );
    } finally {
      cancelReq();
      cancelRoot();
    }
  });

  test("throws a TypeError naming inspectTree for something that is not a Context", () => {
    for (const [bad, shown] of [
      [{}, "an object"],
      ["ctx", '"ctx" \\(string\\)'],
      [{ err() {} }, "an object"],
    ] as const) {
      for (const [fn, call] of [
        ["inspectTree", () => inspectTree(bad as never)],
        ["snapshotTree", () => snapshotTree(bad as never)],
      ] as const) {
        assert.throws(call, {
          name: "TypeError",
          message: new RegExp(
            `^${fn}\\(ctx, options\\): ctx must be a Context, got ${shown}; pass the context whose subtree you want to see`,
          ),
        });
      }
    }
  });

  test("throws a TypeError naming inspectTree for a missing context", () => {
    assert.throws(() => inspectTree(undefined as never), {
      name: "TypeError",
      message:
        /^inspectTree\(ctx, options\): ctx is undefined; pass the context whose subtree you want to see/,
    });
  });
  test("renders a chain deeper than the call stack", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    try {
      let c: context.Context = root;
      const depth = 5_000;
      for (let i = 0; i < depth; i++) c = context.withCancel(c)[0];
      // The tree is built here as data: a snapshot stops at maxDepth, and a real chain is slow to build.
      let node = snapshotTree(c);
      for (let i = 0; i < depth; i++) {
        node = { ...node, label: ".WithCancel", childCount: 1, children: [node] };
      }
      const lines = renderTree(node).split("\n");
      assert.equal(
        lines.length,
        depth + 1,
        `renderTree printed ${lines.length} lines, want ${depth + 1}`,
      );
      assert.match(lines[2]!, /^ {4}└── \.WithCancel {2}withCancel · live · 1 child$/);
    } finally {
      cancelRoot();
    }
  });

  test("renders children in order, with the omitted count after the last one", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    try {
      const [a] = context.withCancel(root);
      context.withCancel(a);
      context.withCancel(root);
      context.withCancel(root);
      // Newest child first, as the live list holds them; a (the oldest) has a child of its own.
      const shape = (maxNodes: number): string[] =>
        inspectTree(root, { maxNodes })
          .split("\n")
          .map((l) => l.replace(/\.WithCancel.*$/, ""));
      assert.deepEqual(shape(4), [
        "context.Background",
        "├── ",
        "├── ",
        "└── ",
        "    └── … 1 more",
      ]);
      assert.deepEqual(shape(3), ["context.Background", "├── ", "├── ", "└── … 1 more"]);
      assert.deepEqual(shape(5), ["context.Background", "├── ", "├── ", "└── ", "    └── "]);
    } finally {
      cancelRoot();
    }
  });

  test("rejects limits that are not whole numbers or Infinity, naming the function", () => {
    const [root, cancelRoot] = context.withCancel(bg);
    try {
      for (const [fn, call] of [
        ["inspectTree", (o: object) => inspectTree(root, o)],
        ["snapshotTree", (o: object) => snapshotTree(root, o)],
      ] as const) {
        for (const [options, shown] of [
          [{ maxNodes: NaN }, "maxNodes.*got NaN \\(number\\)"],
          [{ maxNodes: 0 }, "maxNodes must be a whole number of at least 1.*got 0"],
          [{ maxNodes: "10" }, 'maxNodes.*got "10" \\(string\\)'],
          [{ maxDepth: 1.5 }, "maxDepth must be a whole number of at least 0.*got 1.5"],
          [{ maxDepth: -1 }, "maxDepth.*got -1"],
          [{ now: NaN }, "now must be a time in epoch milliseconds"],
          [{ annotate: "x" }, "annotate must be a function"],
        ] as const) {
          assert.throws(() => call(options), {
            name: "TypeError",
            message: new RegExp(`^${fn}\\(ctx, options\\): options\\.${shown}`),
          });
        }
        assert.throws(() => call("x" as never), {
          name: "TypeError",
          message: new RegExp(`^${fn}\\(ctx, options\\): options must be an object`),
        });
        // Infinity lifts a limit; 0 levels shows the root alone.
        assert.equal(snapshotTree(root, { maxNodes: Infinity, maxDepth: Infinity }).childCount, 0);
      }
      context.withCancel(root);
      assert.equal(snapshotTree(root, { maxDepth: 0 }).omitted, 1);
    } finally {
      cancelRoot();
    }
  });
});

describe("snapshotTree", () => {
  test("returns plain data that survives JSON", () => {
    const tracker = trackContexts();
    const [root, cancelRoot] = context.withTimeoutCause(bg, 60_000, new Error("slow"));
    const [, cancelChild] = context.withCancel(root);
    tracker.stop();
    try {
      const snap = snapshotTree(root);
      assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
      assert.equal(snap.kind, "withDeadline");
      assert.equal(snap.childCount, 1);
      assert.equal(snap.children[0]!.label, ".WithCancel");
      assert.ok(
        snap.remainingMs !== null && snap.remainingMs > 50_000,
        `remainingMs = ${snap.remainingMs}`,
      );
      assert.equal(typeof snap.ageMs, "number");
      assert.match(snap.site ?? "", /tree\.test\.ts:\d+/);
      assert.equal(snap.err, null);
    } finally {
      cancelChild();
      cancelRoot();
    }
  });
});
