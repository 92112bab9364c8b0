/**
 * The core's own test suite, run in headless Chromium: every top-level
 * test/*.test.ts whose only Node imports are node:test and node:assert is
 * bundled with esbuild (those two mapped to the small shims next to this
 * file; any other `node:` import in the bundle fails the build), served from
 * a loopback server and run in the page. A test fails here if it fails in
 * the browser, proving that `taproot-context` needs nothing from Node.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";
import type { Plugin } from "esbuild";
import type { BrowserContext } from "playwright-core";

import { launchChromium } from "../chromium.js";
import { loopback, type Loopback } from "../helpers.js";

import type { Result } from "./shims/node-test.js";

const testDir = fileURLToPath(new URL("../", import.meta.url));
const shimDir = fileURLToPath(new URL("./shims/", import.meta.url));

interface Selection {
  files: string[];
  /** For each Node module the test files import, the names they import from it. */
  nodeNames: Map<string, Set<string>>;
}

const SHIMMED = new Set(["node:test", "node:assert", "node:assert/strict"]);

async function selectFiles(): Promise<Selection> {
  const files = (await readdir(testDir)).filter((f) => f.endsWith(".test.ts")).sort();
  const nodeNames = new Map<string, Set<string>>();
  for (const name of files) {
    const src = await readFile(join(testDir, name), "utf8");
    for (const m of src.matchAll(
      /^\s*import\s+(type\s+)?([^;]*?)\s+from\s*["'](node:[^"'\n]+)["']/gm,
    )) {
      if (m[1] !== undefined || SHIMMED.has(m[3]!)) continue;
      const names = nodeNames.get(m[3]!) ?? new Set<string>();
      nodeNames.set(m[3]!, names);
      const braces = /\{([^}]*)\}/.exec(m[2]!)?.[1] ?? "";
      for (const part of braces.split(",")) {
        const id = part
          .trim()
          .replace(/^type\s+/, "")
          .split(/\s+as\s+/)[0]!;
        if (id !== "" && !part.trim().startsWith("type ")) names.add(id);
      }
    }
  }
  return { files, nodeNames };
}

/**
 * The esbuild plugin that maps node:test and node:assert to the shims (served
 * once, shared by every file) and refuses any other Node module: the core
 * must bundle for the browser without one.
 */
function nodeModules(names: Map<string, Set<string>>): Plugin {
  return {
    name: "taproot-browser",
    setup(b) {
      b.onResolve({ filter: /^\/shim\// }, (args) => ({ path: args.path, external: true }));
      b.onResolve({ filter: /^node:/ }, (args) => {
        if (args.path === "node:test") return { path: "/shim/node-test.js", external: true };
        if (args.path === "node:assert/strict" || args.path === "node:assert") {
          return { path: "/shim/assert.js", external: true };
        }
        // The proof: nothing outside the test files may reach for Node.
        if (!/[\\/]test[\\/][\w-]+\.test\.ts$/.test(args.importer)) {
          return {
            errors: [
              {
                text: `${args.path} imported by ${args.importer}: the core must not need Node modules`,
              },
            ],
          };
        }
        return { path: args.path, namespace: "node-only" };
      });
      b.onLoad({ filter: /.*/, namespace: "node-only" }, (args) => ({
        contents: [
          `import { nodeOnly } from "/shim/node-test.js";`,
          `const m = nodeOnly(${JSON.stringify(args.path)});`,
          `export default m;`,
          ...[...(names.get(args.path) ?? [])].map((n) => `export const ${n} = m.${n};`),
        ].join("\n"),
        loader: "js",
      }));
      // Node's globals, given to test files only (the core must not use them): setImmediate, which
      // the tests' flush helpers use, and a process object whose every use marks the test Node-only.
      b.onLoad({ filter: /[\\/]test[\\/][\w-]+\.test\.ts$/ }, async (args) => ({
        contents: NODE_GLOBALS + (await readFile(args.path, "utf8")),
        loader: "ts",
      }));
    },
  };
}

const NODE_GLOBALS = `import { nodeOnly as __nodeOnly } from "node:test";
const setImmediate = (f: (...a: any[]) => void, ...a: any[]) => setTimeout(f, 0, ...a);
const process: any = __nodeOnly("process");
`;

interface Bundles {
  /** Served files by URL path. */
  files: Map<string, string>;
  /** Test files that bundled. */
  bundled: string[];
  /** Test files that could not be bundled, with esbuild's first error. */
  unbundled: string[];
}

async function bundle(sel: Selection): Promise<Bundles> {
  const files = new Map<string, string>();
  const bundled: string[] = [];
  const unbundled: string[] = [];
  const common = {
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
  } as const;
  for (const f of sel.files) {
    try {
      const r = await build({
        ...common,
        entryPoints: [{ in: join(testDir, f), out: f.replace(/\.ts$/, "") }],
        outdir: "/bundles",
        plugins: [nodeModules(sel.nodeNames)],
      });
      for (const o of r.outputFiles) files.set(o.path, o.text);
      bundled.push(f);
    } catch (err) {
      const first = (err as { errors?: { text: string }[] }).errors?.[0]?.text ?? String(err);
      unbundled.push(`${f}: ${first}`);
    }
  }
  const shims = await build({
    ...common,
    entryPoints: [
      { in: join(shimDir, "node-test.ts"), out: "node-test" },
      { in: join(shimDir, "assert.ts"), out: "assert" },
    ],
    outdir: "/shim",
  });
  for (const o of shims.outputFiles) files.set(o.path, o.text);
  return { files, bundled, unbundled };
}

function page(files: string[]): string {
  return `<!doctype html><meta charset="utf-8"><title>taproot core tests</title>
<script type="module">
import { runFile } from "/shim/node-test.js";
const results = [];
for (const file of ${JSON.stringify(files)}) {
  try {
    await import("/bundles/" + file.replace(/\\.ts$/, ".js"));
    results.push(...(await runFile(file)));
  } catch (err) {
    results.push({ file, name: "<load>", status: "fail", error: String(err && err.stack || err), ms: 0 });
  }
}
globalThis.__taprootResults = results;
</script>`;
}

let bundles: Bundles;
let site: Loopback | undefined;
let base: string;
let userDir: string;
let browser: BrowserContext | undefined;

before(async () => {
  bundles = await bundle(await selectFiles());
  const files = bundles.files;
  files.set("/", page(bundles.bundled));
  const server = createServer((req, res) => {
    const body = files.get(new URL(req.url ?? "/", "http://x").pathname);
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, {
      "content-type":
        req.url === "/" ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8",
      "cache-control": "no-store",
    });
    res.end(body);
  });
  site = await loopback(server);
  base = site.url;
  userDir = await mkdtemp(join(tmpdir(), "taproot-chromium-"));
});

after(async () => {
  await browser?.close();
  await site?.close();
  if (userDir !== undefined) await rm(userDir, { recursive: true, force: true });
});

test("the core's test suite passes in headless Chromium", { timeout: 180_000 }, async (t) => {
  // A Node import reached from the core fails the run: that is what this test proves absent.
  const fromCore = bundles.unbundled.filter((u) =>
    u.includes("the core must not need Node modules"),
  );
  assert.deepEqual(fromCore, [], "the core imports Node modules");
  assert.ok(
    bundles.bundled.length >= 3,
    `only ${bundles.bundled.length} test files bundled for the browser`,
  );
  t.diagnostic(`in the browser: ${bundles.bundled.join(", ")}`);
  for (const u of bundles.unbundled) t.diagnostic(`not bundled: ${u}`);

  browser = await launchChromium(userDir);
  const tab = await browser.newPage();
  const errors: string[] = [];
  tab.on("pageerror", (e) => errors.push(String(e)));
  await tab.goto(base);
  await tab.waitForFunction(
    () => (globalThis as { __taprootResults?: unknown }).__taprootResults !== undefined,
    undefined,
    {
      timeout: 170_000,
      polling: 100,
    },
  );
  const results = (await tab.evaluate(
    () => (globalThis as { __taprootResults?: unknown }).__taprootResults,
  )) as Result[];
  const userAgent = await tab.evaluate(
    () => (globalThis as unknown as { navigator: { userAgent: string } }).navigator.userAgent,
  );

  const count = (s: Result["status"]) => results.filter((r) => r.status === s).length;
  t.diagnostic(
    `${userAgent}: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped, ${count("todo")} todo`,
  );
  for (const r of results.filter((r) => r.status === "skip")) {
    t.diagnostic(`Node-only, skipped in Chromium: ${r.file} > ${r.name} (${r.error})`);
  }
  assert.deepEqual(errors, [], "uncaught errors in the page");
  const failures = results.filter((r) => r.status === "fail");
  assert.equal(
    failures.length,
    0,
    `failed in Chromium:\n${failures.map((f) => `- ${f.file} > ${f.name}\n  ${(f.error ?? "").split("\n").slice(0, 6).join("\n  ")}`).join("\n")}`,
  );
  for (const f of bundles.bundled) {
    assert.ok(
      results.some((r) => r.file === f && r.status !== "fail"),
      `${f}: no test ran in the browser`,
    );
  }
});
