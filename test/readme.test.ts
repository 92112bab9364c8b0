import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..");

interface Block {
  /** The line of README.md the fence opens on. */
  line: number;
  code: string;
  /** The output the block's `//=>` lines promise. */
  want: string[];
  /** Whether the block runs: false for those marked `norun`, which are read and linted only. */
  runs: boolean;
}

/** The README's ```ts blocks, with the output their `//=>` lines promise. */
async function readmeBlocks(): Promise<Block[]> {
  const text = await readFile(join(root, "README.md"), "utf8");
  const blocks: Block[] = [];
  const fence = /^```ts(.*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    const code = m[2] ?? "";
    const want = code
      .split("\n")
      .filter((l) => l.startsWith("//=> "))
      .map((l) => l.slice(5));
    const runs = !(m[1] ?? "").includes("norun");
    blocks.push({ line: text.slice(0, m.index).split("\n").length, code, want, runs });
  }
  return blocks;
}

test("every README code block runs and prints what it says", async (t) => {
  const blocks = (await readmeBlocks()).filter((b) => b.runs);
  assert.ok(blocks.length >= 4, `found ${blocks.length} runnable blocks, want at least 4`);
  // Inside the package, so that `import "taproot-context"` resolves to this package's build.
  const dir = await mkdtemp(join(root, ".tmp-readme-"));
  try {
    for (const b of blocks) {
      await t.test(`README.md:${b.line}`, async () => {
        const file = join(dir, `block-${b.line}.mts`);
        await writeFile(file, b.code);
        const { stdout } = await run(process.execPath, ["--import", "tsx", file], {
          cwd: root,
          timeout: 30_000,
        });
        const got = stdout.trimEnd().split("\n").filter(Boolean);
        assert.deepEqual(got, b.want, `README.md:${b.line} printed ${JSON.stringify(got)}`);
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/**
 * The lint configuration for the README's blocks: a user's, typescript-eslint's parser with type
 * information and taproot-context/eslint's recommended config, as built. It is written next to
 * the blocks and ESLint runs in a process of its own, as the blocks do, so that this file imports
 * Node modules only (the browser run in test/browser/core.test.ts bundles every test file here).
 */
const LINT_CONFIG = `import tseslint from "typescript-eslint";
import taproot from "taproot-context/eslint";

export default [
  {
    files: ["*.mts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        projectService: {
          allowDefaultProject: ["*.mts"],
          // One file per block: more than the default limit of 8.
          maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 64,
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  taproot.configs.recommended,
];
`;

test("every README code block passes the recommended lint config", async (t) => {
  const blocks = await readmeBlocks();
  // Inside the package, so that `import "taproot-context"` resolves to this package's build and
  // its types, which the rules read.
  const dir = await mkdtemp(join(root, ".tmp-readme-lint-"));
  try {
    await writeFile(join(dir, "eslint.config.mjs"), LINT_CONFIG);
    for (const b of blocks) await writeFile(join(dir, `block-${b.line}.mts`), b.code);
    const eslint = join(root, "node_modules", "eslint", "bin", "eslint.js");
    // ESLint exits with 1 when it finds something: the report on stdout is what counts.
    const stdout = await run(process.execPath, [eslint, "--format", "json", "."], {
      cwd: dir,
      timeout: 120_000,
      maxBuffer: 16 << 20,
    }).then(
      (r) => r.stdout,
      (err: { stdout?: string }) => {
        if (err.stdout === undefined || err.stdout === "") throw err;
        return err.stdout;
      },
    );
    const results = JSON.parse(stdout) as Array<{
      filePath: string;
      messages: Array<{ line: number; ruleId: string | null; message: string }>;
    }>;
    for (const b of blocks) {
      await t.test(`README.md:${b.line}`, () => {
        const result = results.find((r) => basename(r.filePath) === `block-${b.line}.mts`);
        assert.ok(result !== undefined, `ESLint did not lint README.md:${b.line}`);
        const got = result.messages.map(
          (m) => `README.md:${b.line + m.line}: ${m.ruleId ?? "parse"}: ${m.message}`,
        );
        assert.deepEqual(got, [], `README.md:${b.line} has lint findings`);
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
