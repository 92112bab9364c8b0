/**
 * taproot benchmarks: `npm run bench` builds the package, then runs this
 * file with `node --expose-gc --import tsx`. It measures the BUILT package
 * (dist/), side by side with the alternatives (baselines.ts), suite by suite
 * (suites/), then judges every bar (bars.ts): a table of the measured value,
 * the limit and PASS/FAIL, and exit code 1 if a bar fails.
 *
 * With TAPROOT_BENCH_BEFORE=DIR (another built dist directory, e.g. built
 * from an earlier commit into .tmp/before), each suite first runs on that
 * build in a process of its own, doing exactly what this process then does
 * (alternatives included, so that both builds are measured in the same
 * process state), and the tables show both builds with the ratio
 * before / taproot.
 *
 * Options: `--quick` (fewer samples), `--json out.json` (also write the raw
 * figures), `--only createCancel,trees` (some suites only: the names in
 * suites/index.ts), `--taproot-only` (no alternatives). See options.ts for
 * the flags of the processes this one starts.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { barTable, judge } from "./bars.js";
import { exercise, loadBuild } from "./build.js";
import { hasGc, settle, sink } from "./harness.js";
import { options } from "./options.js";
import {
  before,
  childResult,
  figures,
  mergeBefore,
  record,
  rows,
  say,
  setPhase,
  warnings,
  type Results,
  type Warning,
} from "./report.js";
import { suites } from "./suites/index.js";
import { treeShape, type Shape } from "./suites/tree-shape.js";

if (!hasGc()) {
  console.error(
    "bench/run.ts needs --expose-gc: run it with `npm run bench` " +
      "(node --expose-gc --import tsx bench/run.ts)",
  );
  process.exit(2);
}
for (const name of options.only ?? []) {
  if (!(name in suites)) {
    console.error(
      `bench/run.ts: --only names ${JSON.stringify(name)}, which is no suite; ` +
        `pick from ${Object.keys(suites).join(", ")}`,
    );
    process.exit(2);
  }
}

const build = await loadBuild(options.dist);
await exercise(build);

if (options.treeShape !== null) {
  setPhase("cancel tree");
  const r = await treeShape(build, options.treeShape as Shape);
  console.log(JSON.stringify(r));
  process.exit(0);
}

/** maxListeners counts the MaxListenersExceededWarnings raised by taproot's code. */
const maxListeners = (ws: Warning[]) =>
  ws.filter((w) => w.name === "MaxListenersExceededWarning" && w.ours).length;

const RUN = fileURLToPath(import.meta.url);

/** runBefore runs one suite on the "before" build in a process of its own and takes in its figures. */
function runBefore(dist: string, suite: string): void {
  const args = [...process.execArgv, "--no-warnings", RUN, "--child", "--dist", dist];
  args.push("--only", suite);
  if (options.quick) args.push("--quick");
  if (!options.alternatives) args.push("--taproot-only");
  const out = execFileSync(process.execPath, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, TAPROOT_BENCH_BEFORE: "" },
  });
  mergeBefore(JSON.parse(out.trim().split("\n").at(-1)!) as Results);
}

const started = performance.now();
say(
  `taproot bench: node ${process.version}, ${process.platform}/${process.arch}` +
    `${options.quick ? ", --quick" : ""}; measuring ${build.dist}` +
    (options.before === null ? "" : `; before: ${options.before}`),
);
say(
  "(a) hand-linked AbortController, (b) AbortSignal.any([parent.signal, own.signal]); " +
    "ratios divide CPU times: alternative (or before) / taproot",
);
if (build.fields === null) {
  say("(this build's tree links could not be found by shape: the tree floors are not measured)");
}

const ran = (suite: string) => options.only === null || options.only.includes(suite);
for (const [name, suite] of Object.entries(suites)) {
  if (!ran(name)) continue;
  const t0 = performance.now();
  if (options.before !== null) runBefore(options.before, name);
  const t1 = performance.now();
  await suite(build);
  const took = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  say(
    `(${name}: ${took(performance.now() - t1)}` +
      (options.before === null ? ")" : `; before: ${took(t1 - t0)})`),
  );
}

setPhase("end");
await settle();
record("warnings.maxListeners", maxListeners(warnings));

if (options.child) {
  console.log(JSON.stringify(childResult()));
  process.exit(0);
}

before.figures["warnings.maxListeners"] = maxListeners(before.warnings);
say("\n## Warnings seen (phase: whose: name)");
const seen = [...warnings, ...before.warnings.map((w) => ({ ...w, phase: `before, ${w.phase}` }))];
if (seen.length === 0) say("none");
for (const w of seen) {
  say(`${w.phase}: ${w.ours ? "taproot" : "baseline"}: ${w.name}: ${w.message.slice(0, 100)}`);
}

const judged = judge(
  (suite) => suite === "always" || ran(suite),
  options.alternatives,
  figures,
  options.before === null ? null : before.figures,
);
say("\n## Bars");
for (const line of barTable(judged, options.before !== null)) say(line);
const failed = judged.filter((j) => !j.pass).length;
say(
  `\n${failed === 0 ? "every bar passes" : `${failed} bar(s) FAIL`}` +
    ` (total ${((performance.now() - started) / 1000).toFixed(1)} s; sink ${sink.value & 1})`,
);

if (options.json !== null) {
  writeFileSync(
    options.json,
    JSON.stringify(
      {
        node: process.version,
        date: new Date().toISOString(),
        dist: build.dist,
        rows,
        figures,
        bars: judged,
        before: options.before === null ? null : { dist: options.before, ...before },
        warnings,
      },
      null,
      2,
    ),
  );
}
if (failed > 0) process.exitCode = 1;
