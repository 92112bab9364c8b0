/**
 * runDocBlocks runs a docs page's ```ts blocks (those not marked `norun`)
 * as programs of their own, inside the package (in a directory git and prettier ignore) so `taproot-context/...`
 * imports resolve to this build, and checks they print what their `//=>`
 * lines promise. Shared by the docs tests of the framework integrations.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = join(import.meta.dirname, "../..");

export async function runDocBlocks(t: TestContext, page: string): Promise<void> {
  const text = await readFile(join(root, page), "utf8");
  const fence = /^```ts(.*)\n([\s\S]*?)^```$/gm;
  const dir = await mkdtemp(join(root, ".tmp-readme-docs-"));
  let ran = 0;
  try {
    for (let m = fence.exec(text); m !== null; m = fence.exec(text)) {
      if ((m[1] ?? "").includes("norun")) continue;
      const code = m[2] ?? "";
      const want = code
        .split("\n")
        .filter((l) => l.startsWith("//=> "))
        .map((l) => l.slice(5));
      const line = text.slice(0, m.index).split("\n").length;
      ran++;
      await t.test(`${page}:${line}`, async () => {
        const file = join(dir, `block-${line}.mts`);
        await writeFile(file, code);
        const { stdout } = await run(process.execPath, ["--import", "tsx", file], {
          cwd: root,
          timeout: 30_000,
        });
        const got = stdout.trimEnd().split("\n").filter(Boolean);
        assert.deepEqual(got, want, `${page}:${line} printed ${JSON.stringify(got)}`);
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.ok(ran > 0, `${page} has no runnable ts block`);
}
