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
import { dirname, posix, relative } from "node:path";
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

  test("nothing reachable from dist/node/index.js is part of taproot/testing", async () => {
    const { files } = await importGraph(
      fileURLToPath(new URL("../dist/node/index.js", import.meta.url)),
    );
    const testing = files.filter((f) => /^dist\/testing\//.test(f));
    assert.deepEqual(testing, [], "taproot/node loads these files of taproot/testing");
  });

  test("every export of package.json resolves to a built file with its types", async () => {
    const pkg = JSON.parse(await readFile(`${root}package.json`, "utf8")) as {
      name: string;
      exports: Record<string, string | { types?: string; default?: string }>;
    };
    assert.equal(pkg.name, "taproot-context");
    const subpaths = Object.keys(pkg.exports).filter((k) => k !== "./package.json");
    assert.deepEqual(subpaths.sort(), [
      ".",
      "./connect",
      "./eslint",
      "./fastify",
      "./fetch",
      "./grpc",
      "./hono",
      "./node",
      "./otel",
      "./pg",
      "./testing",
    ]);
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

  test("nothing reachable from dist/fetch/index.js imports a Node module, taproot/node or taproot/testing", async () => {
    const fetchEntry = `${dist}fetch/index.js`;
    const { files, edges } = await importGraph(fetchEntry);
    assert.ok(files.length > 3, `only ${files.length} files reachable: ${files.join(", ")}`);
    const outside = edges.filter((e) => !e.to.startsWith("dist/"));
    assert.deepEqual(
      outside.map(
        (e) => `${e.from} imports ${e.to}${builtins.has(e.to) ? " (a Node module)" : ""}`,
      ),
      [],
    );
    for (const f of files) {
      assert.ok(
        !/^dist\/(node|testing|eslint)\//.test(f),
        `${f} is reachable from dist/fetch/index.js`,
      );
    }
    const fetchApi = await load("taproot-context/fetch");
    for (const name of [
      "fetchWithContext",
      "fetchHandler",
      "headerBudget",
      "formatConnectTimeout",
    ]) {
      assert.equal(typeof fetchApi[name], "function", `taproot-context/fetch.${name}`);
    }
    const node = await load("taproot-context/node");
    for (const name of ["fetchWithContext", "fetchHandler", "ClientDisconnectedError"]) {
      assert.equal(node[name], fetchApi[name], `taproot-context/node.${name} re-exports /fetch's`);
    }
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

  test("taproot-context/fastify, /hono and /connect import by name", async () => {
    const want: Record<string, string[]> = {
      "taproot-context/fastify": ["contextPlugin"],
      "taproot-context/hono": ["contextMiddleware"],
      "taproot-context/connect": [
        "handlerContext",
        "handlerInterceptor",
        "callOptions",
        "callInterceptor",
      ],
    };
    for (const [spec, names] of Object.entries(want)) {
      const mod = await load(spec);
      for (const name of names) {
        assert.equal(
          typeof mod[name],
          "function",
          `${spec}.${name} is ${typeof mod[name]}, want a function`,
        );
      }
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

/** packedFiles lists the files `npm pack` would publish, as npm itself decides. */
async function packedFiles(): Promise<Set<string>> {
  const { execFile } = await import("node:child_process");
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      "npm",
      ["pack", "--dry-run", "--json", "--ignore-scripts"],
      { cwd: root, timeout: 60_000, maxBuffer: 16 << 20 },
      (err, out) => (err ? reject(err) : resolve(out)),
    ),
  );
  const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
  return new Set(pack!.files.map((f) => f.path));
}

describe("the published tarball", () => {
  test("every relative link in the README and the docs resolves to a file in the tarball", async () => {
    const files = await packedFiles();
    assert.ok(files.has("README.md") && files.has("LICENSE"), "README.md or LICENSE not packed");
    const broken: string[] = [];
    for (const doc of [...files].filter((f) => f.endsWith(".md"))) {
      const text = await readFile(`${root}${doc}`, "utf8");
      for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("#")) continue;
        const path = posix.normalize(posix.join(posix.dirname(doc), target.split("#")[0]!));
        if (!files.has(path))
          broken.push(`${doc} links to ${target} (${path}): not in the tarball`);
      }
    }
    assert.deepEqual(broken, [], "links the published package cannot resolve");
  });

  test("package.json names the repository, homepage and issue tracker", async () => {
    const pkg = JSON.parse(await readFile(`${root}package.json`, "utf8")) as {
      repository?: { url?: string };
      homepage?: string;
      bugs?: { url?: string };
    };
    const home = "github.com/taproot-context/taproot-context";
    assert.ok(
      pkg.repository?.url?.includes(home),
      `repository = ${JSON.stringify(pkg.repository)}`,
    );
    assert.ok(pkg.homepage?.includes(home), `homepage = ${String(pkg.homepage)}`);
    assert.ok(pkg.bugs?.url?.includes(`${home}/issues`), `bugs = ${JSON.stringify(pkg.bugs)}`);
  });

  test("the README's first screen starts with the two commands, then says how to install", async () => {
    const lines = (await readFile(`${root}README.md`, "utf8")).split("\n");
    assert.deepEqual(
      lines.slice(2, 6),
      ["```sh", "npm install && npm start", "npm test", "```"],
      "the README does not open with the two commands",
    );
    const install = lines.findIndex((l) => l.includes("npm install taproot-context"));
    const contributor = lines.findIndex((l) => l.startsWith("`npm start` runs"));
    assert.ok(
      install >= 0 && install < 25,
      `npm install taproot-context on line ${install + 1}, want within the first 25`,
    );
    assert.ok(
      contributor === -1 || install < contributor,
      `install on line ${install + 1}, after the contributors' note on line ${contributor + 1}`,
    );
  });

  test("taproot-context/node's every is the portable one of taproot-context/fetch", async () => {
    const portable = await load("taproot-context/fetch");
    const node = await load("taproot-context/node");
    assert.equal(typeof portable.every, "function", "taproot-context/fetch has no every");
    assert.equal(node.every, portable.every, "taproot-context/node re-exports a different every");
  });
});

/** runChild runs `code` as an ES module in a fresh Node process (with tsx), returning its output. */
async function runChild(code: string): Promise<{ code: number | null; out: string }> {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk));
  let timer: NodeJS.Timeout | undefined;
  const exitCode = await new Promise<number | null>((resolve) => {
    child.on("exit", (c) => resolve(c));
    timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  });
  clearTimeout(timer);
  return { code: exitCode, out };
}

describe("docs/runtimes.md holds", () => {
  const elevenListeners = `
    const s = background().signal;
    for (let i = 0; i < 11; i++) s.addEventListener("abort", () => {});
    await new Promise((r) => setTimeout(r, 20));
    console.log("done");`;

  test("the core alone leaves Node's listener limit on background().signal; taproot-context/node lifts it", async () => {
    const core = await runChild(`import { background } from "./src/index.ts";${elevenListeners}`);
    assert.match(core.out, /MaxListenersExceededWarning/, `core only: ${core.out}`);
    const node = await runChild(
      `import { background } from "./src/index.ts"; import "./src/node/index.ts";${elevenListeners}`,
    );
    assert.doesNotMatch(node.out, /MaxListenersExceededWarning/, `with /node: ${node.out}`);
    assert.match(node.out, /done/);
  });

  test("signalContext does not keep Node alive", async () => {
    const r = await runChild(`
      import { background } from "./src/index.ts";
      import { signalContext } from "./src/node/index.ts";
      const [ctx] = signalContext(background());
      console.log("listening", ctx.err());`);
    assert.equal(r.code, 0, `the process did not exit by itself (code ${r.code}): ${r.out}`);
    assert.match(r.out, /listening null/);
  });

  test("sideEffects lists only the node and testing entry points and the testing tree hook", async () => {
    const pkg = JSON.parse(await readFile(`${root}package.json`, "utf8")) as {
      sideEffects?: unknown;
    };
    assert.deepEqual(pkg.sideEffects, [
      "./dist/node/index.js",
      "./dist/testing/index.js",
      "./dist/testing/tree.js",
    ]);
    const doc = await readFile(`${root}docs/runtimes.md`, "utf8");
    assert.match(doc, /`dist\/node\/index\.js`/);
    assert.doesNotMatch(doc, /"sideEffects": false/);
  });
});
