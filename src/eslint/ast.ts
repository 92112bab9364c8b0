import { ASTUtils, AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
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

/** parameterId returns the identifier a parameter binds, if it binds a single one. */
export function parameterId(param: TSESTree.Parameter): TSESTree.Identifier | undefined {
  let p: TSESTree.Node = param;
  if (p.type === AST_NODE_TYPES.TSParameterProperty) p = p.parameter;
  if (p.type === AST_NODE_TYPES.AssignmentPattern) p = p.left;
  return p.type === AST_NODE_TYPES.Identifier ? p : undefined;
}

/** parameterName returns the name a parameter binds, if it binds a single identifier. */
export function parameterName(param: TSESTree.Parameter): string | undefined {
  return parameterId(param)?.name;
}

/** contextParameterOf returns the identifier of a function's first Context parameter, if it has one. */
export function contextParameterOf(
  context: AnyRuleContext,
  fn: FunctionNode,
): TSESTree.Identifier | undefined {
  for (const param of fn.params) {
    const id = parameterId(param);
    if (id !== undefined && id.name !== "this" && isContextParameter(context, param)) return id;
  }
  return undefined;
}

/**
 * resolvesTo reports whether the name a declaration binds, written at node,
 * refers to that declaration: false when an inner variable of the same name
 * shadows it there (`(ctx) => …` inside a function whose `ctx` is a Context).
 * Check it before suggesting code that names the declaration at node.
 */
export function resolvesTo(
  context: AnyRuleContext,
  node: TSESTree.Node,
  declaration: TSESTree.Identifier,
): boolean {
  const variable = ASTUtils.findVariable(context.sourceCode.getScope(node), declaration.name);
  return variable?.defs.some((def) => def.name === declaration) ?? false;
}

/**
 * contextInScope returns the declaration of the nearest Context a node can
 * see inside the functions around it: a parameter, or a local variable
 * declared before the node (the latest one in the innermost scope that has
 * any). Contexts at module level do not count: they belong to no call. Its
 * name may be shadowed at node by a variable that is no Context; see resolvesTo.
 */
export function contextInScope(
  context: AnyRuleContext,
  node: TSESTree.Node,
): TSESTree.Identifier | undefined {
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
    if (found) return found;
  }
  return undefined;
}

/**
 * finalizersLeft returns the `finally` blocks a `break` or `continue` runs on
 * its way to its target, innermost first: those of the `try` statements it
 * leaves from their `try` or `catch` block.
 */
export function finalizersLeft(
  jump: TSESTree.BreakStatement | TSESTree.ContinueStatement,
): TSESTree.BlockStatement[] {
  const found: TSESTree.BlockStatement[] = [];
  for (let child: TSESTree.Node = jump, n = jump.parent; !isFunction(n); child = n, n = n.parent) {
    if (jump.label) {
      if (n.type === AST_NODE_TYPES.LabeledStatement && n.label.name === jump.label.name) break;
    } else if (
      isLoop(n) ||
      (n.type === AST_NODE_TYPES.SwitchStatement && jump.type === AST_NODE_TYPES.BreakStatement)
    ) {
      break;
    }
    if (!n.parent) break;
    if (n.type === AST_NODE_TYPES.TryStatement && n.finalizer && n.finalizer !== child) {
      found.push(n.finalizer);
    }
  }
  return found;
}
