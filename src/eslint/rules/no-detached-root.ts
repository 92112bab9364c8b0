import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import { contextParameterOf, enclosingFunctions, resolvesTo, type FunctionNode } from "../ast.js";
import type ts from "typescript";
import { createRule } from "../create-rule.js";
import { typeServices } from "../services.js";
import { taprootCallName } from "../taproot.js";
import { typeAnnotationOf } from "../types.js";

type MessageIds =
  "detachedFromParameter" | "detachedFromShadowedParameter" | "detachedFromRequest" | "passContext";

// The types of an incoming request in Node's HTTP servers.
const REQUEST_TYPES = new Set(["IncomingMessage", "Http2ServerRequest"]);

/**
 * no-detached-root reports `background()` and `todo()` called inside a function
 * that already receives a Context, or inside a Node request handler (a function
 * with an `IncomingMessage` parameter, or one that calls `requestContext`):
 * the work started there would ignore the caller's cancellation and deadline.
 * With type information, a parameter whose type extends `IncomingMessage`
 * (Express's `Request`) makes a request handler too.
 */
export default createRule<[], MessageIds>({
  name: "no-detached-root",
  meta: {
    type: "problem",
    hasSuggestions: true,
    docs: {
      description:
        "Disallow `background()` and `todo()` inside functions that receive a Context or handle a request",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      detachedFromParameter:
        "{{fn}}() starts a new context tree inside a function that receives the Context `{{ctx}}`, so this work ignores the caller's cancellation, deadline and values; pass `{{ctx}}` (or withoutCancel({{ctx}}) for work that must outlive the caller).",
      detachedFromShadowedParameter:
        "{{fn}}() starts a new context tree inside a function that receives the Context `{{ctx}}`, so this work ignores the caller's cancellation, deadline and values; `{{ctx}}` here is another variable that shadows the Context, so rename that one and pass `{{ctx}}` (or withoutCancel({{ctx}}) for work that must outlive the caller).",
      detachedFromRequest:
        "{{fn}}() starts a new context tree inside a request handler, so this work goes on after the client disconnects or the server shuts down; use the request's context, requestContext(req) (or withoutCancel() of it for work that must outlive the request).",
      passContext: "Pass `{{ctx}}` instead.",
    },
  },
  defaultOptions: [],
  create(context) {
    const roots: { node: TSESTree.CallExpression; fn: string }[] = [];
    const handlers = new Set<TSESTree.Node>();

    function isRequestParameter(param: TSESTree.Parameter): boolean {
      const annotation = typeAnnotationOf(param);
      if (annotation?.type === AST_NODE_TYPES.TSTypeReference) {
        const name = annotation.typeName;
        const last =
          name.type === AST_NODE_TYPES.TSQualifiedName
            ? name.right.name
            : name.type === AST_NODE_TYPES.Identifier
              ? name.name
              : "";
        if (REQUEST_TYPES.has(last)) return true;
      }
      const services = typeServices(context);
      if (!services || param.type !== AST_NODE_TYPES.Identifier) return false;
      return isRequestType(services.getTypeAtLocation(param), 0);
    }

    // A request type, or one that extends it (Express's Request extends
    // IncomingMessage), a few levels deep at most.
    function isRequestType(type: ts.Type, depth: number): boolean {
      const symbol = type.aliasSymbol ?? type.getSymbol();
      if (symbol && REQUEST_TYPES.has(symbol.name)) return true;
      if (depth > 4) return false;
      if (type.isIntersection()) return type.types.some((t) => isRequestType(t, depth + 1));
      // A generic interface's instance (`Request<P, …>`) has its bases on its target.
      const target = (type as ts.TypeReference).target ?? type;
      const bases = target.isClassOrInterface() ? (target.getBaseTypes() ?? []) : [];
      return bases.some((t) => isRequestType(t, depth + 1));
    }

    function isHandler(fn: FunctionNode): boolean {
      return handlers.has(fn) || fn.params.some(isRequestParameter);
    }

    return {
      CallExpression(node) {
        const fn = taprootCallName(context, node);
        if (fn === "background" || fn === "todo") roots.push({ node, fn });
        if (fn === "requestContext") {
          const [inner] = enclosingFunctions(node);
          if (inner) handlers.add(inner);
        }
      },
      "Program:exit"() {
        for (const { node, fn } of roots) {
          for (const outer of enclosingFunctions(node)) {
            // A default value (`ctx: Context = background()`) is what the
            // function uses when it is given no context: not a detached root.
            if (
              outer.params.some((p) => p.range[0] <= node.range[0] && node.range[1] <= p.range[1])
            ) {
              break;
            }
            const parameter = contextParameterOf(context, outer);
            if (parameter !== undefined) {
              const ctx = parameter.name;
              if (!resolvesTo(context, node, parameter)) {
                // `ctx` here names another variable: suggesting it would not compile.
                context.report({
                  node,
                  messageId: "detachedFromShadowedParameter",
                  data: { fn, ctx },
                });
                break;
              }
              context.report({
                node,
                messageId: "detachedFromParameter",
                data: { fn, ctx },
                suggest: [
                  {
                    messageId: "passContext",
                    data: { ctx },
                    fix: (fixer) => fixer.replaceText(node, ctx),
                  },
                ],
              });
              break;
            }
            if (isHandler(outer)) {
              context.report({ node, messageId: "detachedFromRequest", data: { fn } });
              break;
            }
          }
        }
      },
    };
  },
});
