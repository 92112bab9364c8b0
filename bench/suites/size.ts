/**
 * The bundled size: every export of the core, and background + withCancel
 * alone, bundled and minified by esbuild and gzipped at level 9.
 */
import { gzipSync } from "node:zlib";
import { build as esbuild } from "esbuild";
import type { Build } from "../build.js";
import { before, record, say, setPhase } from "../report.js";

/** bundle bundles `contents` (an entry importing ./index.js) against the build in `dist`. */
async function bundle(contents: string, dist: string): Promise<{ min: number; gz: number }> {
  const out = await esbuild({
    stdin: { contents, resolveDir: dist, loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    write: false,
    platform: "neutral",
    target: "es2022",
  });
  const code = out.outputFiles[0]!.contents;
  return { min: code.length, gz: gzipSync(code, { level: 9 }).length };
}

export async function size({ dist }: Build): Promise<void> {
  setPhase("size");
  const all = await bundle('export * from "./index.js";', dist);
  const small = await bundle('export { background, withCancel } from "./index.js";', dist);
  say("\n## Bundle (esbuild --bundle --minify, gzip -9)");
  const was = (id: string) => {
    const b = before.figures[id];
    return typeof b === "number" ? ` (before: ${b} B)` : "";
  };
  say(
    `taproot (every export of the core):  ${all.min} B minified${was("size.core.min")}, ` +
      `${all.gz} B gzipped${was("size.core.gzip")}`,
  );
  say(
    `background + withCancel only:         ${small.min} B minified${was("size.small.min")}, ` +
      `${small.gz} B gzipped${was("size.small.gzip")}`,
  );
  record("size.core.gzip", all.gz);
  record("size.core.min", all.min);
  record("size.small.gzip", small.gz);
  record("size.small.min", small.min);
}
