import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import { parameterName } from "../ast.js";
import { createRule } from "../create-rule.js";
import { typeAnnotationOf, isContextTypeNode } from "../types.js";

type MessageIds = "notFirst" | "badName";
type Options = [{ names?: string[]; allowTypesBefore?: string[] }];

type FunctionLike =
  | TSESTree.ArrowFunctionExpression
  | TSESTree.FunctionDeclaration
  | TSESTree.FunctionExpression
  | TSESTree.TSDeclareFunction
  | TSESTree.TSEmptyBodyFunctionExpression
  | TSESTree.TSMethodSignature
  | TSESTree.TSFunctionType
  | TSESTree.TSCallSignatureDeclaration
  | TSESTree.TSConstructSignatureDeclaration;

/** The name a type annotation refers to (`Foo` for `Foo`, `Foo<T>` or `ns.Foo`), if any. */
function typeName(node: TSESTree.TypeNode | undefined): string | undefined {
  if (node?.type !== AST_NODE_TYPES.TSTypeReference) return undefined;
  const name = node.typeName;
  if (name.type === AST_NODE_TYPES.Identifier) return name.name;
  if (name.type === AST_NODE_TYPES.TSQualifiedName) return name.right.name;
  return undefined;
}

/**
 * context-first reports a parameter declared with a Context type that is not
 * the function's first parameter, or that is first but not named `ctx`.
 * Parameters without a written type are skipped: their order belongs to
 * whoever declared the callback type.
 */
export default createRule<Options, MessageIds>({
  name: "context-first",
  meta: {
    type: "suggestion",
    docs: {
      description: "Require a Context parameter to come first and be named `ctx`",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [
      {
        type: "object",
        properties: {
          names: {
            type: "array",
            items: { type: "string" },
            minItems: 1,
            description:
              "Names a first Context parameter may have (a leading `_` is always allowed).",
          },
          allowTypesBefore: {
            type: "array",
            items: { type: "string" },
            description: "Type names of parameters that may come before the Context.",
          },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      notFirst:
        "The Context parameter `{{name}}` is parameter {{position}} of this function; make it the first parameter, so every call reads `f(ctx, …)` and the context visibly flows from caller to callee.",
      badName:
        "The Context parameter `{{name}}` should be named {{expected}}, the convention that lets a reader spot the context of a call at a glance; rename it.",
    },
  },
  defaultOptions: [{ names: ["ctx"], allowTypesBefore: [] }],
  create(context, [options]) {
    const names = options.names ?? ["ctx"];
    const allowedBefore = new Set(options.allowTypesBefore ?? []);

    function check(fn: FunctionLike): void {
      const params = fn.params.filter((p) => parameterName(p) !== "this");
      const index = params.findIndex((p) => {
        const annotation = typeAnnotationOf(p);
        return annotation !== undefined && isContextTypeNode(context, annotation);
      });
      if (index < 0) return;
      const param = params[index]!;
      const name = parameterName(param);
      if (index > 0) {
        const before = params.slice(0, index);
        if (before.every((p) => allowedBefore.has(typeName(typeAnnotationOf(p)) ?? ""))) return;
        context.report({
          node: param,
          messageId: "notFirst",
          data: { name: name ?? "…", position: String(index + 1) },
        });
        return;
      }
      if (name === undefined) return;
      const bare = name.replace(/^_+/, "");
      if (names.includes(name) || names.includes(bare)) return;
      context.report({
        node: param,
        messageId: "badName",
        data: { name, expected: names.map((n) => `\`${n}\``).join(" or ") },
      });
    }

    return {
      ArrowFunctionExpression: check,
      FunctionDeclaration: check,
      FunctionExpression: check,
      TSDeclareFunction: check,
      TSEmptyBodyFunctionExpression: check,
      TSMethodSignature: check,
      TSFunctionType: check,
      TSCallSignatureDeclaration: check,
      TSConstructSignatureDeclaration: check,
    };
  },
});
