import { AST_NODE_TYPES, type TSESLint, type TSESTree } from "@typescript-eslint/utils";
import type { CodePath, CodePathSegment } from "@typescript-eslint/utils/ts-eslint";
import { finalizersLeft } from "../ast.js";
import { CodePathTracker, findPath } from "../code-path.js";
import { createRule } from "../create-rule.js";
import { CANCEL_PAIR_FUNCTIONS, findVariable, taprootCallName } from "../taproot.js";

type MessageIds = "discarded" | "neverUsed" | "notUsedOnAllPaths" | "returnWithoutCancel";

// What each kind of context holds until its cancel function runs.
const HELD: Record<string, string> = {
  withCancel: "the context and its parent's reference to it",
  withCancelCause: "the context and its parent's reference to it",
  withSignal: "the listener on the signal and the parent's reference",
  signalContext: "the process signal handlers",
};
const TIMER = "the timer and the parent's reference";

// A cancel variable being followed: where it was defined, and where it is used.
interface Tracked {
  name: string;
  fn: string;
  node: TSESTree.Node;
  variable: TSESLint.Scope.Variable;
  segments: CodePathSegment[];
  order: number;
}

/**
 * lost-cancel reports a cancel function from `withCancel`, `withTimeout`,
 * `withDeadline`, `withSignal`, `signalContext` and their `Cause` variants
 * that is discarded, never used, or not used on some path from where it is
 * defined to a return, like `go vet`'s lostcancel. Any use counts: a call,
 * `using`, returning it, storing it or passing it on.
 */
export default createRule<[], MessageIds>({
  name: "lost-cancel",
  meta: {
    type: "problem",
    docs: {
      description:
        "Require the cancel function of a derived context to be called on every path, held with `using`, returned, stored or passed on",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      discarded:
        "The cancel function returned by {{fn}}() is discarded, so {{held}} stay alive until the parent is done (a context leak); keep it and call it when the work is done, or hold it with `using`.",
      neverUsed:
        "The cancel function `{{name}}` returned by {{fn}}() is never called, so {{held}} stay alive until the parent is done (a context leak); call it when the work is done, in a `finally` block or by holding it with `using`.",
      notUsedOnAllPaths:
        "The cancel function `{{name}}` returned by {{fn}}() is not called on every path (a possible context leak): {{where}} skips it, so {{held}} stay alive; call it in a `finally` block or hold it with `using`.",
      returnWithoutCancel:
        "This return can be reached without calling `{{name}}`, the cancel function returned by {{fn}}() on line {{line}}, so {{held}} stay alive (a possible context leak); call it before returning, or use `try`/`finally` or `using`.",
    },
  },
  defaultOptions: [],
  create(context) {
    const tracker = new CodePathTracker();
    const byCodePath = new Map<string, Tracked[]>();
    // Identifier (a use of a tracked variable) → the variable followed.
    const usesOf = new Map<TSESTree.Identifier, Tracked>();
    // Segment id → tracked variable → traversal order of the uses in it.
    const usedIn = new Map<string, Map<Tracked, number[]>>();
    // Segment id → the return statement that ends it.
    const returns = new Map<string, TSESTree.ReturnStatement>();
    // Segment id → the break or continue that ends it.
    const jumps = new Map<string, TSESTree.BreakStatement | TSESTree.ContinueStatement>();
    // A finally block → the segments it starts and ends in, and the traversal
    // order at its start and end (uses in between are in the block).
    const finalizers = new Map<
      TSESTree.BlockStatement,
      { entry: CodePathSegment[]; from: number; exit?: Set<CodePathSegment>; to: number }
    >();
    let order = 0;

    const held = (fn: string) => HELD[fn] ?? TIMER;

    function follow(
      fn: string,
      id: TSESTree.Identifier,
      variable: TSESLint.Scope.Variable | undefined,
    ): void {
      if (!variable) return;
      const reads = variable.references.filter((r) => r.isRead());
      if (reads.length === 0) {
        context.report({
          node: id,
          messageId: "neverUsed",
          data: { name: id.name, fn, held: held(fn) },
        });
        return;
      }
      // A use inside another function (a callback, a closure handed to
      // someone) may run at any time: treat the cancel function as passed on.
      const home = variable.scope.variableScope;
      if (reads.some((r) => r.from.variableScope !== home)) return;
      const codePath = tracker.codePath;
      if (!codePath) return;
      const tracked: Tracked = {
        name: id.name,
        fn,
        node: id,
        variable,
        segments: tracker.segments,
        order: order++,
      };
      for (const r of reads) usesOf.set(r.identifier as TSESTree.Identifier, tracked);
      const list = byCodePath.get(codePath.id) ?? [];
      list.push(tracked);
      byCodePath.set(codePath.id, list);
    }

    // Targets already checked: a pair chosen by a condition (`a ? withTimeout(…)
    // : withCancel(…)`) reaches its target from each call.
    const checked = new Set<TSESTree.Node>();

    function check(
      fn: string,
      target: TSESTree.Node | null | undefined,
      call: TSESTree.Node,
      declarator?: TSESTree.VariableDeclarator,
    ): void {
      if (!target || checked.has(target)) return;
      checked.add(target);
      if (
        target.type === AST_NODE_TYPES.ArrayPattern ||
        target.type === AST_NODE_TYPES.ObjectPattern
      ) {
        let cancel = cancelElement(target);
        if (cancel === "unknown") return; // a rest element or a computed key may hold it
        if (cancel?.type === AST_NODE_TYPES.AssignmentPattern) cancel = cancel.left;
        if (!cancel) {
          context.report({ node: call, messageId: "discarded", data: { fn, held: held(fn) } });
          return;
        }
        if (cancel.type !== AST_NODE_TYPES.Identifier) return; // stored in a property
        const name = cancel.name;
        const variable = declarator
          ? context.sourceCode.getDeclaredVariables(declarator).find((v) => v.name === name)
          : findVariable(context, cancel);
        follow(fn, cancel, variable);
        return;
      }
      if (target.type === AST_NODE_TYPES.Identifier && declarator) {
        // The pair itself is kept: any use of it may use the cancel function.
        const variable = context.sourceCode.getDeclaredVariables(declarator)[0];
        if (variable && !variable.references.some((r) => r.isRead())) {
          context.report({
            node: target,
            messageId: "neverUsed",
            data: { name: target.name, fn, held: held(fn) },
          });
        }
      }
    }

    function leakFrom(
      codePath: CodePath,
      t: Tracked,
    ): { at: TSESTree.ReturnStatement | undefined } | undefined {
      const exits = new Set(codePath.returnedSegments);
      const found = findPath<TSESTree.ReturnStatement>(t.segments, {
        stops: (segment, first) =>
          usedBetween(segment, t, first ? t.order : -1) || jumpsThroughCancel(segment, t, exits),
        ends: (segment) => exits.has(segment),
        carry: (segment, before) => returns.get(segment.id) ?? before,
      });
      return found && { at: found.carried };
    }

    function usedBetween(segment: CodePathSegment, t: Tracked, after: number, before = Infinity) {
      return (usedIn.get(segment.id)?.get(t) ?? []).some((o) => o > after && o < before);
    }

    // A break or continue goes straight to its target in ESLint's code paths,
    // past the finally blocks that run on the way: a path that ends in one
    // is covered when one of those blocks uses the cancel function on every path.
    function jumpsThroughCancel(
      segment: CodePathSegment,
      t: Tracked,
      exits: Set<CodePathSegment>,
    ): boolean {
      const jump = jumps.get(segment.id);
      if (!jump) return false;
      return finalizersLeft(jump).some((block) => {
        const f = finalizers.get(block);
        if (!f?.exit) return false;
        const exit = f.exit;
        // The block's own shape, reachable or not: a try that always jumps
        // leaves its finally block on no path but the jump's. A return in
        // the block that skips the use is a leak.
        return !findPath(f.entry, {
          stops: (s) => usedBetween(s, t, f.from, f.to),
          ends: (s) => exit.has(s) || exits.has(s),
          unreachable: true,
        });
      });
    }

    return {
      ...tracker.listeners((codePath) => {
        for (const t of byCodePath.get(codePath.id) ?? []) {
          const leak = leakFrom(codePath, t);
          if (!leak) continue;
          const data = { name: t.name, fn: t.fn, held: held(t.fn) };
          const line = t.node.loc.start.line;
          context.report({
            node: t.node,
            messageId: "notUsedOnAllPaths",
            data: {
              ...data,
              where: leak.at
                ? `the return on line ${leak.at.loc.start.line}`
                : "the path to the end of the function",
            },
          });
          if (leak.at) {
            context.report({
              node: leak.at,
              messageId: "returnWithoutCancel",
              data: { ...data, line: String(line) },
            });
          }
        }
        byCodePath.delete(codePath.id);
      }),
      Identifier(node) {
        const t = usesOf.get(node);
        if (!t) return;
        const n = order++;
        for (const segment of tracker.segments) {
          const uses = usedIn.get(segment.id) ?? new Map<Tracked, number[]>();
          usedIn.set(segment.id, uses);
          const list = uses.get(t) ?? [];
          uses.set(t, list);
          list.push(n);
        }
      },
      ReturnStatement(node) {
        for (const segment of tracker.segments) returns.set(segment.id, node);
      },
      "BreakStatement, ContinueStatement"(
        node: TSESTree.BreakStatement | TSESTree.ContinueStatement,
      ) {
        for (const segment of tracker.segments) jumps.set(segment.id, node);
      },
      BlockStatement(node) {
        if (node.parent.type !== AST_NODE_TYPES.TryStatement || node.parent.finalizer !== node) {
          return;
        }
        finalizers.set(node, { entry: tracker.segments, from: order++, to: Infinity });
      },
      "BlockStatement:exit"(node: TSESTree.BlockStatement) {
        const f = finalizers.get(node);
        if (!f) return;
        f.exit = new Set(tracker.segments);
        f.to = order++;
      },
      "CallExpression:exit"(node: TSESTree.CallExpression) {
        const fn = taprootCallName(context, node);
        if (!fn || !CANCEL_PAIR_FUNCTIONS.has(fn)) return;
        // Climb to where the pair goes, past wrappers that do not change the
        // value (`x as T`, `x!`) and choices that may yield it (`a ? pair : b`).
        let value: TSESTree.Node = node;
        while (value.parent && yields(value.parent, value)) value = value.parent;
        const parent = value.parent;
        if (!parent) return;
        switch (parent.type) {
          case AST_NODE_TYPES.ExpressionStatement:
            context.report({ node, messageId: "discarded", data: { fn, held: held(fn) } });
            return;
          case AST_NODE_TYPES.UnaryExpression:
            if (parent.operator === "void") {
              context.report({ node, messageId: "discarded", data: { fn, held: held(fn) } });
            }
            return;
          case AST_NODE_TYPES.MemberExpression:
            if (
              parent.object === value &&
              parent.computed &&
              parent.property.type === AST_NODE_TYPES.Literal &&
              parent.property.value === 0
            ) {
              context.report({ node, messageId: "discarded", data: { fn, held: held(fn) } });
            }
            return;
          case AST_NODE_TYPES.VariableDeclarator:
            if (parent.init === value) check(fn, parent.id, node, parent);
            return;
          case AST_NODE_TYPES.AssignmentExpression:
            if (parent.right === value && parent.operator === "=") check(fn, parent.left, node);
            return;
          default:
            // Returned, passed as an argument, stored in an object or array:
            // whoever receives the pair owns the cancel function now.
            return;
        }
      },
    };
  },
});

/**
 * yields reports whether an expression's value may be its child's: a wrapper
 * (`x as T`, `x!`), a branch of `?:`, or an operand of `??` and `||` (a pair
 * is never nullish nor falsy), or the right operand of `&&`.
 */
function yields(parent: TSESTree.Node, child: TSESTree.Node): boolean {
  switch (parent.type) {
    case AST_NODE_TYPES.TSAsExpression:
    case AST_NODE_TYPES.TSNonNullExpression:
    case AST_NODE_TYPES.TSSatisfiesExpression:
    case AST_NODE_TYPES.TSTypeAssertion:
    case AST_NODE_TYPES.ChainExpression:
      return parent.expression === child;
    case AST_NODE_TYPES.ConditionalExpression:
      return parent.consequent === child || parent.alternate === child;
    case AST_NODE_TYPES.LogicalExpression:
      return parent.right === child || parent.operator !== "&&";
    default:
      return false;
  }
}

/**
 * cancelElement returns what a pattern binds the cancel function (the pair's
 * element 1) to: `cancel` in `[ctx, cancel]` or `{ 1: cancel }`, undefined when
 * it binds nothing, or "unknown" when a rest element or a computed key may hold it.
 */
function cancelElement(
  pattern: TSESTree.ArrayPattern | TSESTree.ObjectPattern,
): TSESTree.Node | undefined | "unknown" {
  if (pattern.type === AST_NODE_TYPES.ArrayPattern) {
    const [first, second] = pattern.elements;
    if (first?.type === AST_NODE_TYPES.RestElement) return "unknown";
    if (second?.type === AST_NODE_TYPES.RestElement) return "unknown";
    return second ?? undefined;
  }
  let unknown = false;
  for (const p of pattern.properties) {
    if (p.type === AST_NODE_TYPES.RestElement) return "unknown";
    if (p.key.type === AST_NODE_TYPES.Literal) {
      if (p.key.value === 1 || p.key.value === "1") return p.value;
    } else if (p.computed) {
      unknown = true;
    }
  }
  return unknown ? "unknown" : undefined;
}
