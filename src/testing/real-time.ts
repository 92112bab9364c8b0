/**
 * The timers and the clock that leak checks wait by, as they were when this
 * module loaded: a test that mocks them later (node:test's `mock.timers`,
 * which replaces `setTimeout`, `setImmediate` and `Date`) must not leave
 * checkLeaks waiting for a turn or a grace period that never comes.
 * src/fetch/request-clock.ts captures setImmediate for the same reason.
 * Ages and creation times stay on the `Date.now()` the test sees, as the
 * core's deadlines do, so that a report's ages and remaining times agree.
 */

const realSetImmediate = setImmediate;
const realSetTimeout = setTimeout;
const realMonotonic = performance.now.bind(performance);

/** turn resolves on a later turn of the event loop, after its I/O callbacks. */
export function turn(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

/** sleepMs resolves after `ms` milliseconds of real time. */
export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** monotonicNow returns `performance.now()`, for how long the grace period has left. */
export function monotonicNow(): number {
  return realMonotonic();
}
