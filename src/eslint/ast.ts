import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import type { AnyRuleContext } from "./services.js";
import { isContextExpression, isContextParameter } from "./types.js";

/** FunctionNode is any function with a body. */
export type FunctionNode =
  TSESTree.ArrowFunctionExpression | TSESTree.FunctionDeclaration | TSESTree.FunctionExpression;

/** isFunction reports whether a node is a function with a body. */
export function isFunction(node: TSESTree.Node): node is FunctionNode {
  return (
    node.type === AST_NODE_TYPES.ArrowFunctionExpression ||
    node.type === AST_NODE_TYPES.FunctionDeclaration ||
    node.type === AST_NODE_TYPES.FunctionExpression
  );
}

/** isLoop reports whether a node is a loop statement. */
export function isLoop(node: TSESTree.Node): boolean {
  return (
    node.type === AST_NODE_TYPES.ForStatement ||
    node.type === AST_NODE_TYPES.ForInStatement ||
    node.type === AST_NODE_TYPES.ForOfStatement ||
    node.type === AST_NODE_TYPES.WhileStatement ||
    node.type === AST_NODE_TYPES.DoWhileStatement
  );
}

/** enclosingFunctions lists the functions around a node, innermost first. */
export function* enclosingFunctions(node: TSESTree.Node): Generator<FunctionNode> {
  for (let n = node.parent; n; n = n.parent) if (isFunction(n)) yield n;
}

/** parameterName returns the name a parameter binds, if it binds a single identifier. */
export function parameterName(param: TSESTree.Parameter): string | undefined {
  let p: TSESTree.Node = param;
  if (p.type === AST_NODE_TYPES.TSParameterProperty) p = p.parameter;
  if (p.type === AST_NODE_TYPES.AssignmentPattern) p = p.left;
  return p.type === AST_NODE_TYPES.Identifier ? p.name : undefined;
}

/** contextParameterOf returns the name of a function's first Context parameter, if it has one. */
export function contextParameterOf(context: AnyRuleContext, fn: FunctionNode): string | undefined {
  for (const param of fn.params) {
    const name = parameterName(param);
    if (name !== undefined && name !== "this" && isContextParameter(context, param)) return name;
  }
  return undefined;
}

/**
 * contextInScope returns the name of the nearest Context a node can see inside
 * the functions around it: a parameter, or a local variable declared before
 * the node (the latest one in the innermost scope that has any). Contexts at module level do not count: they belong to no call.
 */
export function contextInScope(context: AnyRuleContext, node: TSESTree.Node): string | undefined {
  for (let scope = context.sourceCode.getScope(node); scope; scope = scope.upper) {
    if (scope.type === "module" || scope.type === "global") return undefined;
    // In one scope, the latest declaration wins: a context derived in the
    // body (`const [ctx, cancel] = withTimeout(parent, …)`) over the parameter.
    let found: TSESTree.Identifier | undefined;
    for (const variable of scope.variables) {
      const def = variable.defs[0];
      if (!def || (def.type !== "Parameter" && def.type !== "Variable")) continue;
      const id = def.name;
      if (id.type !== AST_NODE_TYPES.Identifier || id.range[0] > node.range[0]) continue;
      if (found && found.range[0] > id.range[0]) continue;
      if (isContextExpression(context, id)) found = id;
    }
    if (found) return found.name;
  }
  return undefined;
}
