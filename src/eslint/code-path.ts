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
