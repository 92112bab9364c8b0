/**
 * What a run reports: the tables the suites print as they go, the named
 * figures the bars are judged on (bars.ts), and the warnings seen.
 *
 * A row shows taproot's figure, the "before" build's (when
 * TAPROOT_BENCH_BEFORE names one) and the two alternatives, with ratios of
 * CPU times: before / taproot and alternative / taproot (above 1 means this
 * build is cheaper). A "before" process (`--child`) prints nothing: it hands
 * its rows and figures to the main process as one JSON line (see childResult);
 * only taproot's figure of each row is kept, the alternatives being this
 * process's.
 */
import { cpu, type Figure } from "./harness.js";
import { options } from "./options.js";

/** Unit of a row: ns per operation, ms per call, or bytes. */
export type Unit = "ns" | "ms" | "B";

/** Row is one line of a table. */
export interface Row {
  group: string;
  name: string;
  unit: Unit;
  /** This build. */
  taproot: Figure;
  /** The alternatives, (a) and (b), as the table's header names them. */
  a?: Figure;
  b?: Figure;
  note?: string;
  /** No ratio: bytes retained per cycle are ≈ 0, and a ratio to them means nothing. */
  noRatio?: boolean;
}

/** Results are what a process measured: its rows (keyed by group and name), figures and warnings. */
export interface Results {
  rows: Record<string, Figure>;
  figures: Record<string, Figure>;
  warnings: Warning[];
}

/** Warning is one process warning, with the phase it came in and whose code raised it. */
export interface Warning {
  phase: string;
  name: string;
  message: string;
  /** False when its target is a signal an alternative uses as a long-lived parent. */
  ours: boolean;
}

/** Every row printed so far, in order (the `--json` output). */
export const rows: Row[] = [];
/** The figures the bars read, by id (see bars.ts). */
export const figures: Record<string, Figure> = {};
/** Every warning seen, here and in the processes this one started. */
export const warnings: Warning[] = [];

/** What the "before" build measured, merged in as its processes report (see run.ts). */
export const before: Results = { rows: {}, figures: {}, warnings: [] };

/** The phase warnings are attributed to: set by each suite. */
let phase = "setup";

/** setPhase names what runs now, for the warnings list. */
export function setPhase(name: string): void {
  phase = name;
}

/** Signals the alternatives use as long-lived parents: a warning about one of them is theirs. */
const baselineTargets = new WeakSet<object>();

/** baseline marks `signal` as an alternative's long-lived parent, and returns it. */
export function baseline<T extends object>(signal: T): T {
  baselineTargets.add(signal);
  return signal;
}

process.on("warning", (w) => {
  const target = (w as Error & { target?: unknown }).target;
  warnings.push({
    phase,
    name: w.name,
    message: w.message,
    ours: !(typeof target === "object" && target !== null && baselineTargets.has(target)),
  });
});

/** record stores a figure a bar reads. */
export function record(id: string, value: Figure): void {
  figures[id] = value;
}

/** fmt prints one number in its unit. */
export function fmt(x: number | null | undefined, unit: Unit): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (unit === "ns") {
    if (x >= 1e6) return `${(x / 1e6).toFixed(2)} ms`;
    if (x >= 1e4) return `${(x / 1e3).toFixed(1)} µs`;
    if (x >= 100) return `${x.toFixed(0)} ns`;
    return `${x.toFixed(x >= 10 ? 1 : 2)} ns`;
  }
  if (unit === "ms") return `${x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)} ms`;
  return `${x.toFixed(Math.abs(x) >= 100 ? 0 : 1)} B`;
}

/** cell prints a figure: a timing as "cpu [wall]". */
export function cell(x: Figure, unit: Unit): string {
  if (x !== null && typeof x === "object") return `${fmt(x.cpu, unit)} [${fmt(x.wall, unit)}]`;
  return fmt(x, unit);
}

/** times prints a ratio: "12×", "1.50×". */
export function times(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return "–";
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

/** ratio is how many times `x` costs what `t` costs, on CPU time. */
export function ratio(t: Figure, x: Figure): number | undefined {
  const tc = cpu(t);
  const xc = cpu(x);
  if (tc === undefined || xc === undefined || tc <= 0) return undefined;
  return xc / tc;
}

/** Widths of the columns: workload, then each figure, then each ratio. */
const NAME = 56;
const FIGURE = 22;
const RATIO = 9;

/** withBefore reports whether the tables have the "before" columns. */
const withBefore = () => options.before !== null;

/** header starts a table; `a` and `b` name the alternatives' columns. */
export function header(title: string, a = "(a) AC", b = "(b) any"): void {
  if (options.child) return;
  const cells = ["workload".padEnd(NAME), "taproot".padStart(FIGURE)];
  if (withBefore()) cells.push("before".padStart(FIGURE), "before/tap".padStart(RATIO + 1));
  cells.push(a.padStart(FIGURE), b.padStart(FIGURE));
  cells.push("a/taproot".padStart(RATIO), "b/taproot".padStart(RATIO));
  console.log(`\n## ${title}`);
  console.log(cells.join(" "));
}

/** key names a row across processes. */
const key = (r: Pick<Row, "group" | "name">) => `${r.group}: ${r.name}`;

/** row prints one line of the current table, with the "before" figure if there is one. */
export function row(r: Row): void {
  rows.push(r);
  if (options.child) return;
  const pre = before.rows[key(r)];
  const rel = (x: Figure) => (r.noRatio ? "–" : times(ratio(r.taproot, x)));
  const cells = [r.name.padEnd(NAME), cell(r.taproot, r.unit).padStart(FIGURE)];
  if (withBefore()) cells.push(cell(pre, r.unit).padStart(FIGURE), rel(pre).padStart(RATIO + 1));
  cells.push(cell(r.a, r.unit).padStart(FIGURE), cell(r.b, r.unit).padStart(FIGURE));
  cells.push(rel(r.a).padStart(RATIO), rel(r.b).padStart(RATIO));
  console.log(cells.join(" ") + (r.note ? `  ${r.note}` : ""));
}

/** say prints a line of the report (nothing in a "before" process). */
export function say(line: string): void {
  if (!options.child) console.log(line);
}

/** childResult is what a "before" process prints as its last line. */
export function childResult(): Results {
  const byKey: Record<string, Figure> = {};
  for (const r of rows) byKey[key(r)] = r.taproot;
  return { rows: byKey, figures, warnings };
}

/** mergeBefore takes in what a "before" process measured. */
export function mergeBefore(r: Results): void {
  Object.assign(before.rows, r.rows);
  Object.assign(before.figures, r.figures);
  before.warnings.push(...r.warnings);
}
