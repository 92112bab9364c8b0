/**
 * The command line of bench/run.ts, parsed once.
 *
 * For people: `--quick` (fewer samples, smaller heap runs), `--json FILE`
 * (also write the raw figures), `--only a,b` (some suites only; names in
 * suites/index.ts), `--taproot-only` (skip the alternatives: a quick look,
 * whose bars against them are left out), and the environment variable
 * TAPROOT_BENCH_BEFORE, a built dist directory to measure side by side with
 * this one.
 *
 * For the processes run.ts starts itself: `--dist DIR` (the build to
 * measure), `--child` (print nothing but the figures, as one JSON line: a
 * "before" process), `--tree-shape SHAPE` (one tree shape, see
 * suites/tree-shape.ts).
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);

/** value returns the argument after `flag`, or null if the flag is absent. */
function value(flag: string): string | null {
  const i = argv.indexOf(flag);
  if (i === -1) return null;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith("--")) {
    throw new Error(`bench/run.ts: ${flag} needs a value, got none; e.g. ${flag} ${example[flag]}`);
  }
  return v;
}

const example: Record<string, string> = {
  "--json": "out.json",
  "--only": "createCancel,trees",
  "--dist": ".tmp/before/dist",
  "--tree-shape": "flat",
};

/** The package's own build, which the bars are judged on. */
export const ownDist = fileURLToPath(new URL("../dist/", import.meta.url));

/**
 * checkDist resolves `dir` (a dist directory, or a package directory holding
 * one) and fails, naming `from`, if it holds no built index.js.
 */
function checkDist(dir: string, from: string): string {
  const abs = isAbsolute(dir) ? dir : resolve(dir);
  if (existsSync(join(abs, "index.js"))) return abs;
  if (existsSync(join(abs, "dist", "index.js"))) return join(abs, "dist");
  throw new Error(
    `bench/run.ts: ${from} is ${JSON.stringify(dir)}, which holds no index.js (nor dist/index.js); ` +
      "point it at a built dist directory, e.g. `git worktree add .tmp/before <commit> && " +
      "(cd .tmp/before && npm ci && npm run build)` then TAPROOT_BENCH_BEFORE=.tmp/before/dist",
  );
}

const before = process.env.TAPROOT_BENCH_BEFORE;

export const options = {
  quick: argv.includes("--quick"),
  json: value("--json"),
  only: value("--only")?.split(",") ?? null,
  /** The build this process measures. */
  dist: checkDist(value("--dist") ?? ownDist, "--dist"),
  /** The build measured side by side, in processes of its own (TAPROOT_BENCH_BEFORE). */
  before: before === undefined || before === "" ? null : checkDist(before, "TAPROOT_BENCH_BEFORE"),
  /** Measure the alternatives too (all but `--taproot-only`). */
  alternatives: !argv.includes("--taproot-only"),
  /** Print nothing but the figures, as one JSON line at the end (a "before" process). */
  child: argv.includes("--child"),
  treeShape: value("--tree-shape"),
};
