/**
 * The alternatives taproot is measured against, written as a careful
 * programmer would write them without taproot:
 *
 * - (a) hand-linked AbortControllers: the child's controller listens to the
 *   parent's signal and removes its listener when canceled;
 * - (b) `AbortSignal.any([parent, own.signal])`, canceled by aborting `own`;
 * - for deadlines, both with `AbortSignal.timeout`, and (a) with a plain
 *   `setTimeout` for reference;
 * - for values, a parent-pointer chain of plain objects and a Map copied at
 *   every level.
 *
 * Each child is returned as [signal, cancel].
 */

/** One hour, in ms: a deadline that never passes during a run. */
export const HOUR = 3_600_000;

/** Child is an alternative's child: its signal and the function that cancels it. */
export type Child = [AbortSignal, () => void];

/** acChild is (a): the hand-linked AbortController child of `parent`. */
export function acChild(parent: AbortSignal): Child {
  const ac = new AbortController();
  if (parent.aborted) {
    ac.abort(parent.reason);
    return [ac.signal, () => {}];
  }
  const onAbort = () => ac.abort(parent.reason);
  parent.addEventListener("abort", onAbort);
  const cancel = () => {
    parent.removeEventListener("abort", onAbort);
    ac.abort();
  };
  return [ac.signal, cancel];
}

/** anyChild is (b): the AbortSignal.any child of `parent`. */
export function anyChild(parent: AbortSignal): Child {
  const own = new AbortController();
  const signal = AbortSignal.any([parent, own.signal]);
  return [signal, () => own.abort()];
}

/** acTimeoutChild is (a) with a deadline from AbortSignal.timeout, linked by hand too. */
export function acTimeoutChild(parent: AbortSignal, ms: number): Child {
  const ac = new AbortController();
  const timeout = AbortSignal.timeout(ms);
  const onAbort = () => {
    parent.removeEventListener("abort", onAbort);
    timeout.removeEventListener("abort", onTimeout);
    ac.abort(parent.reason);
  };
  const onTimeout = () => {
    parent.removeEventListener("abort", onAbort);
    ac.abort(timeout.reason);
  };
  parent.addEventListener("abort", onAbort);
  timeout.addEventListener("abort", onTimeout);
  const cancel = () => {
    parent.removeEventListener("abort", onAbort);
    timeout.removeEventListener("abort", onTimeout);
    ac.abort();
  };
  return [ac.signal, cancel];
}

/** anyTimeoutChild is (b) with a deadline: AbortSignal.any([parent, own, AbortSignal.timeout(ms)]). */
export function anyTimeoutChild(parent: AbortSignal, ms: number): Child {
  const own = new AbortController();
  const signal = AbortSignal.any([parent, own.signal, AbortSignal.timeout(ms)]);
  return [signal, () => own.abort()];
}

/** acTimerChild is (a) with a deadline from a plain setTimeout (unref'd), cleared on cancel. */
export function acTimerChild(parent: AbortSignal, ms: number): Child {
  const ac = new AbortController();
  const onAbort = () => {
    clearTimeout(timer);
    ac.abort(parent.reason);
  };
  const timer = setTimeout(() => {
    parent.removeEventListener("abort", onAbort);
    ac.abort(new DOMException("timed out", "TimeoutError"));
  }, ms).unref();
  parent.addEventListener("abort", onAbort);
  const cancel = () => {
    clearTimeout(timer);
    parent.removeEventListener("abort", onAbort);
    ac.abort();
  };
  return [ac.signal, cancel];
}

/** ChainNode is one level of (a) for values: the walk of value() in plain objects. */
export interface ChainNode {
  key: unknown;
  val: unknown;
  parent: ChainNode | null;
}

/** chainGet looks `key` up from `node` towards the root, as value() does. */
export function chainGet(node: ChainNode, key: unknown): unknown {
  for (let c: ChainNode | null = node; c !== null; c = c.parent) if (c.key === key) return c.val;
  return undefined;
}

/**
 * valueBaselines builds both value alternatives `depth` levels deep, with
 * `key` set at the top and `others[i]` at level i: (a) a parent-pointer chain
 * and (b) a Map copied at every level (O(1) lookup, O(size) per level).
 */
export function valueBaselines(
  key: unknown,
  val: unknown,
  others: unknown[],
  depth: number,
): { chain: ChainNode; map: Map<unknown, unknown> } {
  let chain: ChainNode = { key, val, parent: null };
  for (let i = 1; i < depth; i++) chain = { key: others[i], val: i, parent: chain };
  let map = new Map<unknown, unknown>([[key, val]]);
  for (let i = 1; i < depth; i++) map = new Map(map).set(others[i], i);
  return { chain, map };
}
