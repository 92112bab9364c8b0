import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import ts from "typescript";
import { createRule } from "../create-rule.js";
import { typeServices } from "../services.js";
import { CONTEXT_FIRST_FUNCTIONS, taprootCallName, unwrap } from "../taproot.js";
import { isContextType, nullishOrAny } from "../types.js";

type MessageIds = "nullish" | "maybeNullish" | "anyTyped";

/** isNullishLiteral reports whether an expression is `null`, `undefined` or `void …`. */
function isNullishLiteral(node: TSESTree.Node): boolean {
  const n = unwrap(node);
  return (
    (n.type === AST_NODE_TYPES.Literal && n.value === null && !("regex" in n)) ||
    (n.type === AST_NODE_TYPES.Identifier && n.name === "undefined") ||
    (n.type === AST_NODE_TYPES.UnaryExpression && n.operator === "void")
  );
}

/**
 * no-nullish-context reports `null`, `undefined`, a value that may be either,
 * or an `any`-typed value passed where a function expects a Context. With type
 * information it checks every call against the called signature; without, it
 * checks the context argument of taproot's own functions.
 */
export default createRule<[], MessageIds>({
  name: "no-nullish-context",
  meta: {
    type: "problem",
    docs: {
      description:
        "Disallow passing `null`, `undefined` or an `any` value where a Context is expected",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      nullish:
        "`{{arg}}` is passed where a Context is expected; there is no nil context: code that uses it crashes or silently skips cancellation. Pass the caller's `ctx`, background() at a root, or todo() while the wiring is unfinished.",
      maybeNullish:
        "`{{arg}}` may be null or undefined, and is passed where a Context is expected; code that uses it crashes or silently skips cancellation. Pass a Context for sure: the caller's `ctx`, or `{{arg}} ?? background()` at a root.",
      anyTyped:
        "`{{arg}}` is `any`-typed and passed where a Context is expected, so nothing checks that it is one (it may be undefined at run time); give it the type Context, or pass the caller's `ctx`.",
    },
  },
  defaultOptions: [],
  create(context) {
    const services = typeServices(context);
    const text = (node: TSESTree.Node) => {
      const t = context.sourceCode.getText(node);
      return t.length > 40 ? `${t.slice(0, 37)}...` : t;
    };

    function checkArgument(arg: TSESTree.Node): void {
      if (isNullishLiteral(arg)) {
        context.report({ node: arg, messageId: "nullish", data: { arg: text(arg) } });
        return;
      }
      if (!services) return;
      const kind = nullishOrAny(services.getTypeAtLocation(arg));
      if (kind === "any") {
        context.report({ node: arg, messageId: "anyTyped", data: { arg: text(arg) } });
      } else if (kind === "nullish") {
        context.report({ node: arg, messageId: "maybeNullish", data: { arg: text(arg) } });
      }
    }

    function check(node: TSESTree.CallExpression | TSESTree.NewExpression): void {
      if (services) {
        const checker = services.program.getTypeChecker();
        const tsNode = services.esTreeNodeToTSNodeMap.get(node) as ts.CallLikeExpression;
        const signature = checker.getResolvedSignature(tsNode);
        if (signature) {
          const params = signature.getParameters();
          node.arguments.forEach((arg, i) => {
            if (arg.type === AST_NODE_TYPES.SpreadElement) return;
            const param = params[Math.min(i, params.length - 1)];
            if (!param) return;
            let type = checker.getTypeOfSymbolAtLocation(param, tsNode);
            const declaration = param.valueDeclaration;
            if (
              i >= params.length - 1 &&
              declaration &&
              ts.isParameter(declaration) &&
              declaration.dotDotDotToken
            ) {
              type = checker.getIndexTypeOfType(type, ts.IndexKind.Number) ?? type;
            } else if (i >= params.length) {
              return;
            }
            if (isContextType(checker, type)) checkArgument(arg);
          });
          return;
        }
      }
      if (node.type !== AST_NODE_TYPES.CallExpression) return;
      const fn = taprootCallName(context, node);
      const first = node.arguments[0];
      if (fn && CONTEXT_FIRST_FUNCTIONS.has(fn) && first && isNullishLiteral(first)) {
        context.report({ node: first, messageId: "nullish", data: { arg: text(first) } });
      }
    }

    return { CallExpression: check, NewExpression: check };
  },
});
