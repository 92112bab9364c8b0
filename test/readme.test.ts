import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..");

/** The README's ```ts blocks, except those marked `norun`, with the output their `//=>` lines promise. */
async function readmeBlocks(): Promise<Array<{ line: number; code: string; want: string[] }>> {
  const text = await readFile(join(root, "README.md"), "utf8");
  const blocks: Array<{ line: number; code: string; want: string[] }> = [];
  const fence = /^```ts(.*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
    if ((m[1] ?? "").includes("norun")) continue;
    const code = m[2] ?? "";
    const want = code
      .split("\n")
      .filter((l) => l.startsWith("//=> "))
      .map((l) => l.slice(5));
    blocks.push({ line: text.slice(0, m.index).split("\n").length, code, want });
  }
  return blocks;
}

test("every README code block runs and prints what it says", async (t) => {
  const blocks = await readmeBlocks();
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
