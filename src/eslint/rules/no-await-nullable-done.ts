import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import type { RuleFixer } from "@typescript-eslint/utils/ts-eslint";
import ts from "typescript";
import { createRule } from "../create-rule.js";
import { typeServices } from "../services.js";
import {
  CANCEL_PAIR_FUNCTIONS,
  findVariable,
  memberName,
  taprootCallName,
  unwrap,
} from "../taproot.js";
import { isContextExpression } from "../types.js";

type MessageIds = "awaitDone" | "raceDone" | "waitForever";

// The combinators that settle as soon as one element does: a null element settles them at once.
const COMBINATORS = new Set(["race", "any"]);

/**
 * no-await-nullable-done reports `await ctx.done()` (and `ctx.done()` in
 * `Promise.race` or `Promise.any`) where `done()` may return null: for a
 * context that can never be canceled it does, and awaiting null resumes at
 * once instead of waiting. A context known to be cancelable (the first half
 * of a `const [ctx, cancel]` pair, or a request's context) is let through.
 */
export default createRule<[], MessageIds>({
  name: "no-await-nullable-done",
  meta: {
    type: "problem",
    hasSuggestions: true,
    docs: {
      description: "Disallow awaiting `ctx.done()` where it may be null",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      awaitDone:
        "`await {{call}}` does not wait when the context can never be canceled: done() is then null, and awaiting null resumes at once. Check it first (`const done = {{recv}}.done(); if (done) await done;`), or wait forever like Go's nil channel: `await ({{call}} ?? new Promise<never>(() => {}))`.",
      raceDone:
        "`{{call}}` in Promise.{{combinator}}() settles the race at once when the context can never be canceled: done() is then null, which counts as already resolved. Use `{{call}} ?? new Promise<never>(() => {})`, which never settles, like Go's nil channel.",
      waitForever: "Wait forever when done() is null: `{{call}} ?? new Promise<never>(() => {})`.",
    },
  },
  defaultOptions: [],
  create(context) {
    const services = typeServices(context);
    const typed = !/\.[cm]?jsx?$/.test(context.filename);

    // A done() call that may return null, with the text of its receiver.
    function nullableDone(node: TSESTree.Node): TSESTree.CallExpression | undefined {
      const call = unwrap(node);
      if (call.type !== AST_NODE_TYPES.CallExpression || call.arguments.length > 0)
        return undefined;
      const callee = unwrap(call.callee);
      if (callee.type !== AST_NODE_TYPES.MemberExpression || memberName(callee) !== "done") {
        return undefined;
      }
      if (services) {
        const type = services.getTypeAtLocation(call);
        const parts = type.isUnion() ? type.types : [type];
        if (!parts.some((t) => t.flags & ts.TypeFlags.Null)) return undefined;
      }
      return isContextExpression(context, callee.object) && !isCancelable(callee.object)
        ? call
        : undefined;
    }

    // Whether a context is known to be cancelable, so its done() is never
    // null: a request's context, or the context of a `const [ctx, cancel]`
    // pair from withCancel, withTimeout and the like.
    function isCancelable(node: TSESTree.Node): boolean {
      const expr = unwrap(node);
      if (expr.type === AST_NODE_TYPES.CallExpression) {
        return taprootCallName(context, expr) === "requestContext";
      }
      if (expr.type !== AST_NODE_TYPES.Identifier) return false;
      const def = findVariable(context, expr)?.defs[0];
      if (def?.type !== "Variable" || def.parent.kind !== "const" || !def.node.init) return false;
      const init = unwrap(def.node.init);
      if (init.type !== AST_NODE_TYPES.CallExpression) return false;
      const fn = taprootCallName(context, init);
      if (def.node.id.type === AST_NODE_TYPES.Identifier) return fn === "requestContext";
      return (
        def.node.id.type === AST_NODE_TYPES.ArrayPattern &&
        def.node.id.elements[0] === def.name &&
        CANCEL_PAIR_FUNCTIONS.has(fn ?? "")
      );
    }

    function suggest(call: TSESTree.CallExpression, parenthesize: boolean) {
      const text = context.sourceCode.getText(call);
      const never = typed ? "new Promise<never>(() => {})" : "new Promise(() => {})";
      const replacement = `${text} ?? ${never}`;
      return [
        {
          messageId: "waitForever" as const,
          data: { call: text },
          fix: (fixer: RuleFixer) =>
            fixer.replaceText(call, parenthesize ? `(${replacement})` : replacement),
        },
      ];
    }

    return {
      AwaitExpression(node) {
        const call = nullableDone(node.argument);
        if (!call) return;
        const callee = unwrap(call.callee) as TSESTree.MemberExpression;
        context.report({
          node,
          messageId: "awaitDone",
          data: {
            call: context.sourceCode.getText(call),
            recv: context.sourceCode.getText(callee.object),
          },
          suggest: suggest(call, true),
        });
      },
      CallExpression(node) {
        const callee = unwrap(node.callee);
        if (
          callee.type !== AST_NODE_TYPES.MemberExpression ||
          callee.object.type !== AST_NODE_TYPES.Identifier ||
          callee.object.name !== "Promise" ||
          !COMBINATORS.has(memberName(callee) ?? "")
        ) {
          return;
        }
        const list = node.arguments[0];
        if (list?.type !== AST_NODE_TYPES.ArrayExpression) return;
        for (const element of list.elements) {
          if (!element || element.type === AST_NODE_TYPES.SpreadElement) continue;
          const call = nullableDone(element);
          if (!call) continue;
          context.report({
            node: element,
            messageId: "raceDone",
            data: {
              call: context.sourceCode.getText(call),
              combinator: memberName(callee) ?? "race",
            },
            suggest: suggest(call, false),
          });
        }
      },
    };
  },
});
