/**
 * The measuring harness: the two clocks, per-operation timings sampled by
 * mitata's `measure()`, one-shot timings, and the collections that keep one
 * measurement's garbage out of the next.
 *
 * Every timing is a pair: `cpu`, the median CPU time of the process per
 * operation (what the code costs; it does not count the time this process
 * waits for a core on a loaded box), and `wall`, the median elapsed time.
 * Bars are judged on `cpu`.
 */
import { measure } from "mitata";
import { options } from "./options.js";

/** Timing is a median cost per operation (ns) or per call (ms), on both clocks. */
export interface Timing {
  cpu: number;
  wall: number;
}

/** A figure is what a suite measured: a timing, a plain number (bytes, counts), or nothing. */
export type Figure = Timing | number | null | undefined;

/** gc is the collector that `node --expose-gc` exposes. */
const collect = (globalThis as { gc?: () => void }).gc;

/** gc collects garbage now; run.ts refuses to start without `--expose-gc`. */
export function gc(): void {
  collect?.();
}

/** hasGc reports whether the process was started with `--expose-gc`. */
export function hasGc(): boolean {
  return typeof collect === "function";
}

/**
 * sink keeps each workload's result alive, so that V8 cannot drop the loop
 * as dead code. It is printed at the end of a run.
 */
export const sink = { value: 0 };

/** Length of one timed call of a per-operation workload, in ns: one mitata sample. */
const CALL_NS = 200_000;

/** cpu is the figure a bar is judged on: the CPU median of a timing, or the number itself. */
export function cpu(x: Figure): number | undefined {
  if (x === null || x === undefined) return undefined;
  return typeof x === "number" ? x : x.cpu;
}

/** median of a list of numbers (the mean of the middle two for an even count). */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
}

/** cpuClock is the process's CPU time in ns (1 µs resolution): the clock bars are judged on. */
export function cpuClock(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** timeLoop runs `fn(n)` once and returns [wall ns, CPU ns of the whole process]. */
function timeLoop(fn: (n: number) => number, n: number): [number, number] {
  const c0 = cpuClock();
  const t0 = process.hrtime.bigint();
  sink.value ^= fn(n) | 0;
  const wall = Number(process.hrtime.bigint() - t0);
  return [wall, cpuClock() - c0];
}

/**
 * perOp times `fn(n)`, which must perform n operations in its own loop (so
 * that the loop is compiled with the code it measures) and return a number
 * computed from them. It warms up (150 ms, 40 ms with `--quick`) while it
 * picks n so that one call lasts about 200 µs (far above the CPU clock's
 * resolution, and above mitata's batching threshold, so that each sample is
 * one call), then lets mitata's `measure()` sample the call for 300 ms
 * (100 ms) twice, once on the CPU clock and once on its own wall clock, and
 * returns the medians per operation, in ns.
 */
export async function perOp(fn: (n: number) => number): Promise<Timing> {
  let n = 1;
  const warmEnd = performance.now() + (options.quick ? 40 : 150);
  for (;;) {
    const [ns] = timeLoop(fn, n);
    if (ns >= CALL_NS || n >= 1 << 26) {
      if (performance.now() >= warmEnd) break;
    } else {
      n = ns < 1e4 ? n * 8 : Math.max(n + 1, Math.ceil((n * CALL_NS * 1.1) / ns));
    }
  }
  const call = () => {
    sink.value ^= fn(n) | 0;
  };
  const sampling = { min_cpu_time: (options.quick ? 100 : 300) * 1e6, gc: false };
  const onCpu = await measure(call, { ...sampling, now: cpuClock });
  const onWall = await measure(call, sampling);
  return { cpu: onCpu.p50 / n, wall: onWall.p50 / n };
}

/** Once is one timed call in ms: [wall, cpu]. */
export type Once = [number, number];

/** once times one call of `fn`, in ms: [wall, cpu]. */
export function once(fn: () => unknown): Once {
  const [wall, cpuNs] = timeLoop(() => Number(fn()), 1);
  return [wall / 1e6, cpuNs / 1e6];
}

/** medianOf turns [wall, cpu] pairs into a timing. */
export function medianOf(pairs: Once[]): Timing {
  return { cpu: median(pairs.map((p) => p[1])), wall: median(pairs.map((p) => p[0])) };
}

/** settle lets queued warnings, promise jobs and finalizers run, then collects garbage. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
}

/**
 * quiet settles, then waits while the collector's background threads finish
 * sweeping what the forced collections left: timed otherwise, a walk over a
 * 100k-node tree pays for that work on the other core (process CPU) and for
 * the memory bandwidth it takes.
 */
export async function quiet(): Promise<void> {
  await settle();
  await new Promise((resolve) => setTimeout(resolve, options.quick ? 50 : 200));
}

/** heapUsed is V8's heap in use, in bytes (call settle() first for a figure after gc()). */
export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}
