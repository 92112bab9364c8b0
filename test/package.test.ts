/**
 * The package as a user sees it, after `npm run build` (which `npm test`
 * runs first): every subpath of package.json's `exports` resolves by name
 * (a self-reference import), and nothing reachable from `taproot-context` imports a
 * Node module, so the core runs on any JavaScript runtime.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import { dirname, relative } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = fileURLToPath(new URL("../", import.meta.url));
const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const entry = fileURLToPath(new URL("../dist/index.js", import.meta.url));
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** load imports a subpath by name. The name is a variable so that type-checking never needs dist/. */
const load = (spec: string): Promise<Record<string, unknown>> => import(spec);

type Core = typeof import("../src/index.js");
type Testing = typeof import("../src/testing/index.js");

interface Edge {
  from: string;
  to: string;
}

/** importGraph returns every import (static, dynamic, re-export) reachable from the built file, as from → to edges. */
async function importGraph(start: string): Promise<{ files: string[]; edges: Edge[] }> {
  const r = await build({
    entryPoints: [start],
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "neutral",
    logLevel: "silent",
    // Keep every non-relative import as a leaf, so that a `node:` one shows up instead of failing the build.
    plugins: [
      {
        name: "leaves",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) => ({ path: args.path, external: true }));
        },
      },
    ],
  });
  const edges: Edge[] = [];
  for (const [file, input] of Object.entries(r.metafile.inputs)) {
    for (const imp of input.imports) edges.push({ from: file, to: imp.path });
  }
  return { files: Object.keys(r.metafile.inputs), edges };
}

describe("package", () => {
  test("was built: dist/index.js exists", () => {
    assert.ok(
      existsSync(entry),
      `${relative(root, entry)} is missing; run npm run build (npm test does)`,
    );
  });

  test("nothing reachable from dist/index.js imports a Node module, or anything outside the package", async () => {
    const { files, edges } = await importGraph(entry);
    assert.ok(
      files.length > 5,
      `only ${files.length} files reachable from dist/index.js: ${files.join(", ")}`,
    );
    const outside = edges.filter(
      (e) => !e.to.startsWith("dist/") && !e.to.startsWith(relative(root, dist)),
    );
    assert.deepEqual(
      outside.map(
        (e) => `${e.from} imports ${e.to}${builtins.has(e.to) ? " (a Node module)" : ""}`,
      ),
      [],
    );
    for (const f of files) {
      assert.ok(
        !/^dist\/(node|testing|eslint)\//.test(f),
        `${f} is reachable from dist/index.js; the core must not load taproot/node, taproot/testing or taproot/eslint`,
      );
      const text = await readFile(`${root}${f}`, "utf8");
      assert.doesNotMatch(text, /\brequire\s*\(/, `${f} calls require()`);
    }
  });

  test("every export of package.json resolves to a built file with its types", async () => {
    const pkg = JSON.parse(await readFile(`${root}package.json`, "utf8")) as {
      name: string;
      exports: Record<string, string | { types?: string; default?: string }>;
    };
    assert.equal(pkg.name, "taproot-context");
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== "./package.json");
    assert.deepEqual(subpaths.sort(), [".", "./eslint", "./node", "./pg", "./testing"]);
    for (const sub of subpaths) {
      const spec = sub === "." ? "taproot-context" : `taproot-context/${sub.slice(2)}`;
      const file = fileURLToPath(import.meta.resolve(spec));
      assert.ok(file.startsWith(dist), `${spec} resolves to ${file}, want a file under dist/`);
      assert.ok(
        existsSync(file),
        `${spec} resolves to ${relative(root, file)}, which does not exist; run npm run build`,
      );
      const exp = pkg.exports[sub]!;
      const types = typeof exp === "string" ? undefined : exp.types;
      assert.ok(types !== undefined, `exports["${sub}"] has no "types"`);
      assert.ok(
        existsSync(`${root}${types}`),
        `exports["${sub}"].types = ${types}, which does not exist`,
      );
      assert.equal(
        dirname(file),
        dirname(`${root}${types.slice(2)}`),
        `${spec}: code and types in different directories`,
      );
    }
  });

  test("taproot imports by name and reads like Go", async () => {
    const context = (await load("taproot-context")) as unknown as Core;
    const [ctx, cancel] = context.withCancel(context.background());
    cancel();
    assert.equal(ctx.err(), context.Canceled);
    assert.equal(String(context.background()), "context.Background");
  });

  test("taproot-context/node imports by name", async () => {
    const node = await load("taproot-context/node");
    for (const name of ["requestContext", "signalContext", "serve", "debugHandler"]) {
      assert.equal(
        typeof node[name],
        "function",
        `taproot-context/node.${name} is ${typeof node[name]}, want a function`,
      );
    }
  });

  test("taproot-context/testing imports by name and watches the same core as taproot", async () => {
    const context = (await load("taproot-context")) as unknown as Core;
    const testing = (await load("taproot-context/testing")) as unknown as Testing;
    const tracker = testing.trackContexts({ grace: 0 });
    const [parent, cancelParent] = context.withCancel(context.background());
    try {
      const [child] = context.withCancel(parent);
      const leaks = await tracker.leaks();
      assert.deepEqual(
        leaks.map((l) => l.context),
        [parent, child],
        "taproot-context/testing does not see contexts made by taproot: two copies of the core?",
      );
    } finally {
      tracker.stop();
      cancelParent();
    }
  });

  test("taproot-context/eslint imports by name as an ESLint plugin", async () => {
    const mod = (await load("taproot-context/eslint")) as {
      default?: { rules?: object; configs?: object };
    };
    const plugin = mod.default;
    assert.equal(
      typeof plugin?.rules,
      "object",
      "taproot-context/eslint has no default export with rules",
    );
    assert.equal(typeof plugin?.configs, "object", "taproot-context/eslint has no configs");
  });
});
