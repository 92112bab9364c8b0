/**
 * The clock that request deadlines and arrival times are read from: the
 * time of the current turn of the event loop, read once per turn.
 *
 * `Date.now()` costs as much as the rest of a request's deadline (a call
 * into the runtime, ~0.1 µs on a virtual machine), and a busy server reads
 * many requests in one turn of its event loop. Node's own timers count from
 * the loop's time in the same way (libuv's `uv_now`, taken once per turn),
 * so a request deadline is exactly as precise as a `setTimeout` made at the
 * same moment: both may start counting a little before the call, by as much
 * as the turn's earlier callbacks ran.
 */

/**
 * setImmediate as it was when this module loaded: a test that mocks timers
 * later (node:test's `mock.timers`) must not stop the clock. Absent on
 * runtimes without it (browsers, workers), where every read is Date.now().
 */
const nextTurn: ((f: () => void) => unknown) | undefined =
  typeof setImmediate === "function" ? setImmediate : undefined;

/** The time read in this turn (epoch ms); valid while `fresh` is true. */
let turnTime = 0;
/** The monotonic clock's reading of this turn, taken by its first requestMonotonic(); valid while `monotonicFresh` is true. */
let turnMonotonic = 0;
/** Set by the first read of a turn, which schedules the turn's immediate; cleared by that immediate once the turn is over. */
let fresh = false;
/**
 * Set by the first requestMonotonic() of a turn, cleared with `fresh`: a
 * turn that only dates its requests (serve()'s arrival times, without a
 * timeout) reads one clock, not two.
 */
let monotonicFresh = false;
/** The work joinTurnEnd() was given in this turn, run by the turn's immediate; null when none. */
let turnEndTask: (() => void) | null = null;

/** turnOver runs once a turn of the event loop is over: the clock expires, then the turn's task runs. */
function turnOver(): void {
  fresh = false;
  monotonicFresh = false;
  const task = turnEndTask;
  turnEndTask = null;
  if (task !== null) task();
}

/** read takes this turn's reading of the wall clock, and schedules the immediate that expires it. */
function read(): void {
  turnTime = Date.now();
  if (nextTurn !== undefined) {
    fresh = true;
    nextTurn(turnOver);
  }
}

/**
 * joinTurnEnd runs `task` once this turn of the event loop is over, from the
 * immediate that expires the clock, and returns true, when that immediate
 * is already due: the clock was read in this turn. Otherwise it runs
 * nothing and returns false: an immediate of its own, a call from native
 * code into JavaScript per turn, may cost more than the listeners it saves
 * where a turn holds few requests (BENCHMARKS.md, "no listener for a
 * response finished within its turn"). One task
 * per turn: a second call in the same turn replaces the first, so its
 * caller batches its own work (taproot/node's response watch, the only
 * caller).
 */
export function joinTurnEnd(task: () => void): boolean {
  if (!fresh) return false;
  turnEndTask = task;
  return true;
}

/**
 * requestTime returns the current time in epoch ms as of this turn of the
 * event loop: the first call of a turn reads `Date.now()`, the others reuse
 * it. It dates a request (its deadline as `deadline()` reports it, its
 * arrival); what times a request out is the monotonic reading.
 */
export function requestTime(): number {
  if (!fresh) read();
  return turnTime;
}

/**
 * requestMonotonic returns `performance.now()` as of this turn, read by the
 * turn's first call (in the same turn as requestTime's reading, at most a
 * few callbacks later): request deadlines expire by it, so a wall clock
 * stepped back or forward neither stretches nor cuts a request's time
 * budget.
 */
export function requestMonotonic(): number {
  if (!fresh) read();
  if (!monotonicFresh) {
    turnMonotonic = performance.now();
    // Without an immediate to expire it (no setImmediate), every read is fresh.
    monotonicFresh = fresh;
  }
  return turnMonotonic;
}
