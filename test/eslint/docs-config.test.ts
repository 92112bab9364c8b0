/**
 * The ESLint config that docs/eslint.md (and the README's Lint section)
 * shows, run as written with `eslint .` on a small project in a temporary
 * directory: TypeScript, `.js` and `.mjs` files and the config file itself,
 * `using _cancel = …`, a `withCancel(parent)` helper. The project's
 * node_modules are symlinks to this repository's (eslint, typescript-eslint,
 * typescript) and to this package itself, so the built plugin in dist/ is
 * what runs (`npm run build` first; `npm test` does), with no network.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const eslintBin = join(root, "node_modules/eslint/bin/eslint.js");

/** The files of the project under lint; `bad.ts` holds the one mistake each run must still find. */
const PROJECT: Record<string, string> = {
  "package.json": JSON.stringify({ name: "app", private: true, type: "module" }),
  "tsconfig.json": JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      lib: ["ES2022", "ESNext.Disposable"],
      types: [],
      noEmit: true,
      skipLibCheck: true,
    },
    include: ["src"],
  }),
  "src/users.ts": `import { background, sleep, withCancel, withTimeout, type Context } from "taproot-context";

export async function fetchUser(ctx: Context, id: string): Promise<string> {
  const [rctx, cancel] = withTimeout(ctx, 2_000);
  using _cancel = cancel;
  await sleep(rctx, 1);
  return id;
}

export function withTenant(parent: Context): Context {
  const [ctx, cancel] = withCancel(parent);
  setTimeout(cancel, 10);
  return ctx;
}

export async function main(): Promise<void> {
  const [ctx, cancel] = withCancel(background());
  try {
    await fetchUser(withTenant(ctx), "ada");
  } finally {
    cancel();
  }
}
`,
  "src/bad.ts": `import { withTimeout, type Context } from "taproot-context";

export function leak(ctx: Context): void {
  withTimeout(ctx, 5);
}
`,
  "scripts/poll.mjs": `import { background, sleep, withCancel, withTimeout } from "taproot-context";

export async function poll(ctx, url) {
  using _cancel = withTimeout(ctx, 1_000)[1];
  const res = await fetch(url, { signal: ctx.signal });
  await sleep(ctx, 1);
  return res.status;
}

export function child(parent) {
  const [ctx, cancel] = withCancel(parent);
  setTimeout(cancel, 10);
  return ctx;
}

const [root, stop] = withCancel(background());
await poll(root, "http://127.0.0.1:1/").catch(() => {});
stop();
`,
  "tools/version.js": `export function bump(version) {
  const [major, minor] = version.split(".");
  return \`\${major}.\${Number(minor) + 1}.0\`;
}
`,
};

/** configBlock returns the ```js block of `file` that starts with `// eslint.config.js`. */
async function configBlock(file: string): Promise<string> {
  const text = await readFile(join(root, file), "utf8");
  const m = /^```js[^\n]*\n(\/\/ eslint\.config\.js[\s\S]*?)^```$/m.exec(text);
  assert.ok(m !== null, `${file} has no \`\`\`js block starting with // eslint.config.js`);
  return m[1]!;
}

interface Message {
  ruleId: string | null;
  message: string;
  line: number;
  fatal?: boolean;
}

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "taproot-eslint-docs-"));
  for (const [name, text] of Object.entries(PROJECT)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  // node_modules: each of this repository's packages, plus taproot-context itself (its built dist/).
  const modules = join(dir, "node_modules");
  await mkdir(modules);
  for (const entry of await readdir(join(root, "node_modules"))) {
    if (entry.startsWith(".")) continue;
    if (!entry.startsWith("@")) {
      await symlink(join(root, "node_modules", entry), join(modules, entry), "dir");
      continue;
    }
    await mkdir(join(modules, entry));
    for (const sub of await readdir(join(root, "node_modules", entry))) {
      await symlink(join(root, "node_modules", entry, sub), join(modules, entry, sub), "dir");
    }
  }
  await symlink(root, join(modules, "taproot-context"), "dir");
});

after(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** lint writes `config` as the project's eslint.config.js and runs `eslint .`, returning the messages by file. */
async function lint(config: string): Promise<Map<string, Message[]>> {
  await writeFile(join(dir, "eslint.config.js"), config);
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [eslintBin, ".", "--format", "json"],
      { cwd: dir, timeout: 120_000, maxBuffer: 16 << 20 },
      // Exit code 1 means "problems found", which the bad file guarantees; anything else is a crash.
      (err, out, errOut) =>
        err !== null && (err as { code?: unknown }).code !== 1
          ? reject(new Error(`eslint . crashed (${String(err.code)}):\n${errOut}${out}`))
          : resolve(out),
    ),
  );
  const results = JSON.parse(stdout) as { filePath: string; messages: Message[] }[];
  return new Map(results.map((r) => [r.filePath.slice(dir.length + 1), r.messages]));
}

function show(messages: Message[] | undefined): string {
  return (messages ?? []).map((m) => `${m.line}: ${m.ruleId ?? "fatal"}: ${m.message}`).join("\n");
}

describe("the documented ESLint config", () => {
  for (const file of ["docs/eslint.md", "README.md"]) {
    test(`${file}'s config lints .ts, .js and .mjs files and itself with no false errors`, async () => {
      const byFile = await lint(await configBlock(file));
      const want = [
        "eslint.config.js",
        "scripts/poll.mjs",
        "src/bad.ts",
        "src/users.ts",
        "tools/version.js",
      ];
      assert.deepEqual([...byFile.keys()].sort(), want, "eslint . did not lint every file");
      for (const name of want.filter((n) => n !== "src/bad.ts")) {
        assert.equal(
          show(byFile.get(name)),
          "",
          `${name}: got these problems, want none (config from ${file})`,
        );
      }
      // The rules still run under this config: the discarded cancel in bad.ts is found.
      const bad = byFile.get("src/bad.ts") ?? [];
      assert.deepEqual(
        bad.map((m) => `${m.line}: ${m.ruleId}`),
        ["4: taproot/lost-cancel"],
        `src/bad.ts: got\n${show(bad)}\nwant only taproot/lost-cancel on line 4`,
      );
    });
  }

  test("the config it replaces failed on this project (the test can tell)", async () => {
    const old = `// eslint.config.js
import tseslint from "typescript-eslint";
import taproot from "taproot-context/eslint";
const types = { languageOptions: { parserOptions: { projectService: true } } };
export default tseslint.config(tseslint.configs.recommended, taproot.configs.recommended, types);
`;
    const byFile = await lint(old);
    const all = [...byFile.values()].flat();
    assert.ok(
      all.some((m) => m.fatal === true && /not found by the project service/.test(m.message)),
      `the old config gave no project-service parsing error:\n${show(all)}`,
    );
    assert.ok(
      all.some((m) => m.ruleId === "@typescript-eslint/no-unused-vars"),
      `the old config did not report using _cancel:\n${show(all)}`,
    );
  });
});
