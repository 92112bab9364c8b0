/**
 * Every bar taproot must clear, on one screen. Each compares one figure a
 * suite recorded (report.ts `record`) with its limit; times are CPU medians.
 * run.ts prints them as a table (measured, before, limit, PASS/FAIL) and
 * exits with 1 if one fails. A bar whose suite did not run (`--only`) is
 * left out; a bar whose figure could not be measured fails.
 */
import { cpu, type Figure } from "./harness.js";
import { fmt, times } from "./report.js";

/** Get reads a figure by id: the CPU median of a timing, or the number. */
type Get = (id: string) => number | undefined;

/** Bar is one limit on one figure. */
export interface Bar {
  /** The suite that measures the figure. */
  suite: string;
  bar: string;
  at: "≤" | "<" | "≥";
  limit: number;
  /** How the figure prints: a time, bytes, a ratio or a count. */
  unit: "ns" | "ms" | "B" | "×" | "count";
  value: (get: Get) => number | undefined;
  /** The figure is a ratio to an alternative: left out with `--taproot-only`. */
  vs?: "alternative";
}

/** per is a / b, if both were measured. */
function per(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b <= 0 ? undefined : a / b;
}

/** tree is the bar on one shape's 100k-tree cancel in one heap state. */
const tree = (shape: string, state: "clean" | "amid", label: string): Bar => ({
  suite: "trees",
  bar: `cancel 100k descendants, ${shape}, ${label}`,
  at: "≤",
  limit: 10,
  unit: "ms",
  value: (f) => f(`tree.${shape}.${state}`),
});

// prettier-ignore
export const bars: Bar[] = [
  { suite: "createCancel", bar: "create+cancel, .signal untouched", at: "≤", limit: 100, unit: "ns", value: (f) => f("create.untouched") },
  { suite: "createCancel", bar: "… hand-linked AbortController (a) / taproot", at: "≥", limit: 100, unit: "×", value: (f) => per(f("create.a"), f("create.untouched")), vs: "alternative" },
  { suite: "createCancel", bar: "… AbortSignal.any (b) / taproot", at: "≥", limit: 100, unit: "×", value: (f) => per(f("create.b"), f("create.untouched")), vs: "alternative" },
  { suite: "createCancel", bar: "… with 10,000 live siblings", at: "≤", limit: 100, unit: "ns", value: (f) => f("create.untouched10k") },
  { suite: "createCancel", bar: "… … (a) / taproot", at: "≥", limit: 100, unit: "×", value: (f) => per(f("create.a10k"), f("create.untouched10k")), vs: "alternative" },
  { suite: "createCancel", bar: "… … (b) / taproot", at: "≥", limit: 100, unit: "×", value: (f) => per(f("create.b10k"), f("create.untouched10k")), vs: "alternative" },
  { suite: "createCancel", bar: "create+cancel, .signal touched: taproot / (a)", at: "≤", limit: 1, unit: "×", value: (f) => per(f("create.touched"), f("create.a")), vs: "alternative" },
  { suite: "createCancel", bar: "… with 10,000 live siblings", at: "≤", limit: 1, unit: "×", value: (f) => per(f("create.touched10k"), f("create.a10k")), vs: "alternative" },
  { suite: "timeouts", bar: "withTimeout(parent, 1h) create+cancel: faster AbortSignal.timeout code / taproot", at: "≥", limit: 5, unit: "×", value: (f) => per(minimum(f("timeout.a"), f("timeout.b")), f("timeout.taproot")), vs: "alternative" },
  tree("flat", "clean", "clean heap"),
  tree("flat", "amid", "built among garbage"),
  tree("10-way", "clean", "clean heap"),
  tree("10-way", "amid", "built among garbage"),
  tree("chain", "clean", "clean heap"),
  tree("chain", "amid", "built among garbage"),
  { suite: "trees", bar: "descendants whose err() was still null when cancel() returned", at: "≤", limit: 0, unit: "count", value: (f) => f("tree.liveAfterCancel") },
  { suite: "rootsAndErr", bar: "err() on a live context", at: "≤", limit: 5, unit: "ns", value: (f) => f("err.live") },
  { suite: "values", bar: "value() at depth 100", at: "≤", limit: 200, unit: "ns", value: (f) => f("value.depth100") },
  { suite: "rootsAndErr", bar: "background(): distinct objects over 1M calls", at: "≤", limit: 0, unit: "count", value: (f) => f("background.distinct") },
  { suite: "rootsAndErr", bar: "background(): heap growth per call", at: "<", limit: 1, unit: "B", value: (f) => f("background.heapPerCall") },
  { suite: "rootsAndErr", bar: "background(): roots that are not frozen", at: "≤", limit: 0, unit: "count", value: (f) => f("background.unfrozen") },
  { suite: "rootsAndErr", bar: "Promises and AbortControllers a fresh child holds (done()/signal lazy)", at: "≤", limit: 0, unit: "count", value: (f) => f("lazy.freshChild") },
  { suite: "heap", bar: "retained heap per create+cancel cycle, 1M cycles under one parent", at: "<", limit: 1, unit: "B", value: (f) => f("heap.retainedPerCycle") },
  { suite: "heap", bar: "a live child with its cancel function, .signal untouched", at: "≤", limit: 256, unit: "B", value: (f) => f("heap.perLiveChild") },
  { suite: "listeners", bar: "listeners 1000 live withSignal children hold on the outside signal", at: "≤", limit: 1, unit: "count", value: (f) => f("listeners.held") },
  { suite: "listeners", bar: "… left on it once they end", at: "≤", limit: 0, unit: "count", value: (f) => f("listeners.left") },
  { suite: "listeners", bar: "listeners on a parent's signal whose 1000 live children's signals were read", at: "≤", limit: 0, unit: "count", value: (f) => f("listeners.onParent") },
  { suite: "always", bar: "MaxListenersExceededWarning from taproot code, ever", at: "≤", limit: 0, unit: "count", value: (f) => f("warnings.maxListeners") },
  { suite: "size", bar: "the core bundled, minified and gzipped (esbuild, gzip -9)", at: "≤", limit: 5_000, unit: "B", value: (f) => f("size.core.gzip") },
];

/** minimum of two figures, either of which may be missing. */
function minimum(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/** Judged is a bar with its figure, and the "before" build's where there is one. */
export interface Judged {
  bar: string;
  /** The limit as printed: "≤ 100 ns". */
  limit: string;
  measured: number | undefined;
  before: number | undefined;
  /** The two figures as printed. */
  text: { measured: string; before: string };
  pass: boolean;
}

/** limitText prints a bar's limit as written here: "100 ns", "5,000 B", "100×". */
function limitText(bar: Bar): string {
  const n = bar.limit.toLocaleString("en-US");
  if (bar.unit === "count") return n;
  return bar.unit === "×" ? `${n}×` : `${n} ${bar.unit}`;
}

/** passes reports whether `value` clears `bar`. */
function passes(bar: Bar, value: number | undefined): boolean {
  if (value === undefined || Number.isNaN(value)) return false;
  if (bar.at === "≤") return value <= bar.limit;
  if (bar.at === "<") return value < bar.limit;
  return value >= bar.limit;
}

/** show prints a figure in a bar's unit. */
function show(bar: Bar, x: number | undefined): string {
  if (x === undefined) return "–";
  if (bar.unit === "×") return times(x);
  if (bar.unit === "count") return String(Math.round(x * 1000) / 1000);
  return fmt(x, bar.unit);
}

/**
 * judge checks every bar whose suite ran against `figures`; the before
 * column reads `beforeFigures`, what the "before" build's processes measured
 * (their own alternatives included).
 */
export function judge(
  ran: (suite: string) => boolean,
  alternatives: boolean,
  figures: Record<string, Figure>,
  beforeFigures: Record<string, Figure> | null,
): Judged[] {
  const read = (from: Record<string, Figure>) => (id: string) => cpu(from[id]);
  const merged = beforeFigures === null ? null : { ...figures, ...beforeFigures };
  return bars
    .filter((b) => ran(b.suite) && (alternatives || b.vs !== "alternative"))
    .map((b) => {
      const measured = b.value(read(figures));
      const before = merged === null ? undefined : b.value(read(merged));
      return {
        bar: b.bar,
        limit: `${b.at} ${limitText(b)}`,
        measured,
        before,
        text: { measured: show(b, measured), before: show(b, before) },
        pass: passes(b, measured),
      };
    });
}

/** barTable prints the judged bars as a table, one line each. */
export function barTable(judged: Judged[], withBefore: boolean): string[] {
  const W = Math.max(...judged.map((j) => j.bar.length), 3);
  const head = ["bar".padEnd(W), "measured".padStart(12)];
  if (withBefore) head.push("before".padStart(12));
  head.push("limit".padStart(10), "result");
  const lines = [head.join("  ")];
  for (const j of judged) {
    const cells = [j.bar.padEnd(W), j.text.measured.padStart(12)];
    if (withBefore) cells.push(j.text.before.padStart(12));
    cells.push(j.limit.padStart(10), j.pass ? "PASS" : "FAIL");
    lines.push(cells.join("  "));
  }
  return lines;
}
