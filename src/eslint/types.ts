import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import ts from "typescript";
import { type AnyRuleContext, typeServices } from "./services.js";
import {
  CANCEL_PAIR_FUNCTIONS,
  CONTEXT_FUNCTIONS,
  findVariable,
  importedName,
  isFromTaproot,
  taprootCallName,
  unwrap,
} from "./taproot.js";

// Recognizing a Context: by type when the file was parsed with type
// information, by its written annotation or its taproot origin otherwise.

const NULLISH = ts.TypeFlags.Null | ts.TypeFlags.Undefined | ts.TypeFlags.Void;

/** hasProperties reports whether a type has every one of the named properties. */
function hasProperties(checker: ts.TypeChecker, type: ts.Type, names: readonly string[]): boolean {
  return names.every((name) => checker.getPropertyOfType(type, name) !== undefined);
}

/**
 * isContextType reports whether a type is a taproot `Context`: the interface
 * declared by taproot, any type named `Context` with `done`, `err` and
 * `signal`, or any type with all five members of the interface. A union is a
 * Context when every part but `null` and `undefined` is.
 */
export function isContextType(checker: ts.TypeChecker, type: ts.Type): boolean {
  if (type.flags & ts.TypeFlags.TypeParameter) {
    const constraint = checker.getBaseConstraintOfType(type);
    return constraint !== undefined && constraint !== type && isContextType(checker, constraint);
  }
  if (type.isUnion()) {
    const parts = type.types.filter((t) => !(t.flags & NULLISH));
    return parts.length > 0 && parts.every((t) => isContextType(checker, t));
  }
  if (type.isIntersection()) return type.types.some((t) => isContextType(checker, t));
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown | ts.TypeFlags.Never)) return false;
  const symbol = type.aliasSymbol ?? type.getSymbol();
  if (symbol?.name === "Context") {
    if (symbol.declarations?.some(isFromTaproot)) return true;
    if (hasProperties(checker, type, ["done", "err", "signal"])) return true;
  }
  return hasProperties(checker, type, ["deadline", "done", "err", "value", "signal"]);
}

/** isNullishOrAnyType describes why a type is no Context to pass: `"any"`, `"nullish"` (may be null or undefined), or undefined. */
export function nullishOrAny(type: ts.Type): "any" | "nullish" | undefined {
  if (type.flags & ts.TypeFlags.Any) return "any";
  if (type.flags & NULLISH) return "nullish";
  if (type.isUnion() && type.types.some((t) => t.flags & NULLISH)) return "nullish";
  return undefined;
}

/** isContextTypeNode reports whether a written type annotation names a taproot Context. */
export function isContextTypeNode(context: AnyRuleContext, node: TSESTree.TypeNode): boolean {
  if (isContextTypeNodeSyntactically(context, node)) return true;
  const services = typeServices(context);
  if (!services) return false;
  const checker = services.program.getTypeChecker();
  const tsNode = services.esTreeNodeToTSNodeMap.get(node) as ts.TypeNode;
  return isContextType(checker, checker.getTypeFromTypeNode(tsNode));
}

function isContextTypeNodeSyntactically(context: AnyRuleContext, node: TSESTree.TypeNode): boolean {
  if (node.type === AST_NODE_TYPES.TSUnionType) {
    const parts = node.types.filter(
      (t) =>
        t.type !== AST_NODE_TYPES.TSNullKeyword &&
        t.type !== AST_NODE_TYPES.TSUndefinedKeyword &&
        t.type !== AST_NODE_TYPES.TSVoidKeyword,
    );
    return parts.length > 0 && parts.every((t) => isContextTypeNodeSyntactically(context, t));
  }
  if (node.type !== AST_NODE_TYPES.TSTypeReference) return false;
  const name = node.typeName;
  if (name.type === AST_NODE_TYPES.Identifier) return importedName(context, name) === "Context";
  return (
    name.type === AST_NODE_TYPES.TSQualifiedName &&
    name.right.name === "Context" &&
    name.left.type === AST_NODE_TYPES.Identifier &&
    importedName(context, name.left) === "*"
  );
}

/** typeAnnotationOf returns the type written on a parameter or variable, if any. */
export function typeAnnotationOf(node: TSESTree.Node): TSESTree.TypeNode | undefined {
  const n = node.type === AST_NODE_TYPES.TSParameterProperty ? node.parameter : node;
  if (
    n.type === AST_NODE_TYPES.Identifier ||
    n.type === AST_NODE_TYPES.AssignmentPattern ||
    n.type === AST_NODE_TYPES.RestElement ||
    n.type === AST_NODE_TYPES.ArrayPattern ||
    n.type === AST_NODE_TYPES.ObjectPattern
  ) {
    if (n.typeAnnotation) return n.typeAnnotation.typeAnnotation;
    if (n.type === AST_NODE_TYPES.AssignmentPattern) return typeAnnotationOf(n.left);
  }
  return undefined;
}

/** isContextParameter reports whether a function parameter is declared with a Context type. */
export function isContextParameter(context: AnyRuleContext, param: TSESTree.Parameter): boolean {
  const annotation = typeAnnotationOf(param);
  if (annotation) return isContextTypeNode(context, annotation);
  const services = typeServices(context);
  if (!services) return false;
  const target = param.type === AST_NODE_TYPES.TSParameterProperty ? param.parameter : param;
  if (target.type !== AST_NODE_TYPES.Identifier) return false;
  return isContextType(services.program.getTypeChecker(), services.getTypeAtLocation(target));
}

/**
 * isContextExpression reports whether an expression evaluates to a Context: by
 * its type when type information is available, else by where it came from (a
 * parameter or variable annotated `Context`, a taproot call that returns one,
 * or the first element of a taproot `[ctx, cancel]` pair).
 */
export function isContextExpression(context: AnyRuleContext, node: TSESTree.Node): boolean {
  const services = typeServices(context);
  if (services) {
    const checker = services.program.getTypeChecker();
    if (isContextType(checker, services.getTypeAtLocation(node))) return true;
  }
  const expr = unwrap(node);
  if (expr.type === AST_NODE_TYPES.CallExpression) {
    return CONTEXT_FUNCTIONS.has(taprootCallName(context, expr) ?? "");
  }
  if (expr.type !== AST_NODE_TYPES.Identifier) return false;
  const def = findVariable(context, expr)?.defs[0];
  if (!def) return false;
  if (def.type === "Parameter") {
    const annotation = def.name.typeAnnotation?.typeAnnotation;
    return annotation !== undefined && isContextTypeNode(context, annotation);
  }
  if (def.type !== "Variable") return false;
  const declarator = def.node;
  if (declarator.id.type === AST_NODE_TYPES.Identifier) {
    const annotation = declarator.id.typeAnnotation?.typeAnnotation;
    if (annotation) return isContextTypeNode(context, annotation);
    const init = declarator.init && unwrap(declarator.init);
    return (
      init?.type === AST_NODE_TYPES.CallExpression &&
      CONTEXT_FUNCTIONS.has(taprootCallName(context, init) ?? "")
    );
  }
  if (
    declarator.id.type === AST_NODE_TYPES.ArrayPattern &&
    declarator.id.elements[0] === def.name
  ) {
    const init = declarator.init && unwrap(declarator.init);
    return (
      init?.type === AST_NODE_TYPES.CallExpression &&
      CANCEL_PAIR_FUNCTIONS.has(taprootCallName(context, init) ?? "")
    );
  }
  return false;
}
