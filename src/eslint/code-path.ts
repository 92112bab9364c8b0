import type { TSESTree } from "@typescript-eslint/utils";
import type { CodePath, CodePathSegment, RuleListener } from "@typescript-eslint/utils/ts-eslint";

/**
 * CodePathTracker follows ESLint's code path analysis so a rule can ask, for
 * any node it visits, which code path and segments it runs in. ESLint 9 no
 * longer offers `codePath.currentSegments`; this keeps the same answer from
 * the segment start and end events.
 */
export class CodePathTracker {
  // One frame per function (and the program) being traversed; pushed by
  // onCodePathStart, popped by onCodePathEnd.
  readonly #stack: { codePath: CodePath; current: Set<CodePathSegment> }[] = [];

  /** codePath returns the code path being traversed. */
  get codePath(): CodePath | undefined {
    return this.#stack.at(-1)?.codePath;
  }

  /** segments returns the segments the traversal is in now (several after a fork merges). */
  get segments(): CodePathSegment[] {
    return [...(this.#stack.at(-1)?.current ?? [])];
  }

  /**
   * listeners returns the code path event handlers, calling `onEnd` when a code
   * path is complete and its segment graph can be walked.
   */
  listeners(onEnd: (codePath: CodePath, node: TSESTree.Node) => void): RuleListener {
    const enter = (segment: CodePathSegment) => this.#stack.at(-1)?.current.add(segment);
    const leave = (segment: CodePathSegment) => this.#stack.at(-1)?.current.delete(segment);
    const handlers = {
      onCodePathStart: (codePath: CodePath) => {
        this.#stack.push({ codePath, current: new Set() });
      },
      onCodePathEnd: (codePath: CodePath, node: TSESTree.Node) => {
        this.#stack.pop();
        onEnd(codePath, node);
      },
      onCodePathSegmentStart: enter,
      onCodePathSegmentEnd: leave,
      onUnreachableCodePathSegmentStart: enter,
      onUnreachableCodePathSegmentEnd: leave,
    };
    return handlers as unknown as RuleListener;
  }
}

/**
 * SegmentGraph is a CodePathSegment with the edges ESLint keeps but does not
 * type: `allNextSegments` also leads into unreachable segments.
 */
interface SegmentGraph extends CodePathSegment {
  allNextSegments: CodePathSegment[];
}

/**
 * findPath walks every path forward from `start` and returns the first
 * segment where `ends` holds, or undefined when every path is stopped first by
 * `stops` (which sees whether the segment is one of `start`, entered before the
 * walk began). `carry` is threaded along each path: what the last segment
 * before a given one recorded. With `unreachable`, it also follows the edges
 * into unreachable segments, to look at the shape of code no path reaches.
 */
export function findPath<T>(
  start: readonly CodePathSegment[],
  options: {
    stops: (segment: CodePathSegment, first: boolean) => boolean;
    ends: (segment: CodePathSegment) => boolean;
    carry?: (segment: CodePathSegment, before: T | undefined) => T | undefined;
    unreachable?: boolean;
  },
): { segment: CodePathSegment; carried: T | undefined } | undefined {
  const { stops, ends, carry = (_, before) => before, unreachable = false } = options;
  const next = (segment: CodePathSegment) =>
    unreachable ? (segment as SegmentGraph).allNextSegments : segment.nextSegments;
  const seen = new Set<string>();
  const queue: { segment: CodePathSegment; before: T | undefined }[] = [];
  const visit = (segment: CodePathSegment, before: T | undefined, first: boolean) => {
    if ((!unreachable && !segment.reachable) || stops(segment, first)) return undefined;
    const carried = carry(segment, before);
    if (ends(segment)) return { segment, carried };
    for (const n of next(segment)) queue.push({ segment: n, before: carried });
    return undefined;
  };
  for (const segment of start) {
    const found = visit(segment, undefined, true);
    if (found) return found;
  }
  while (queue.length > 0) {
    const { segment, before } = queue.shift()!;
    if (seen.has(segment.id)) continue;
    seen.add(segment.id);
    const found = visit(segment, before, false);
    if (found) return found;
  }
  return undefined;
}
