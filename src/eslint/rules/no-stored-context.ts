import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import ts from "typescript";
import { isFunction } from "../ast.js";
import { createRule } from "../create-rule.js";
import { typeServices } from "../services.js";
import { importedName, memberName } from "../taproot.js";
import {
  isContextExpression,
  isContextType,
  isContextTypeNode,
  typeAnnotationOf,
} from "../types.js";

type MessageIds = "stored";
type Options = [{ allowClasses?: string[] }];

type ClassNode = TSESTree.ClassDeclaration | TSESTree.ClassExpression;

/**
 * no-stored-context reports a Context kept beyond the call it belongs to: in a
 * class field, a constructor parameter property, `this.x = ctx`, a module-level
 * `let`, or a collection of contexts (an array, a Set, a Map) in a class field
 * or at module level (containedctx). Classes that implement Context themselves
 * may hold their parent.
 */
export default createRule<Options, MessageIds>({
  name: "no-stored-context",
  meta: {
    type: "suggestion",
    docs: {
      description: "Disallow keeping a Context in a class field or a long-lived object",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [
      {
        type: "object",
        properties: {
          allowClasses: {
            type: "array",
            items: { type: "string" },
            description:
              "Names of classes that may hold a Context (e.g. a framework's request object).",
          },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      stored:
        "A Context kept in {{where}} outlives the call it belongs to: later calls use a context that may be canceled already (or never will be), and its values leak into unrelated work; pass the context as the first parameter (`ctx`) of each function that needs it instead.",
    },
  },
  defaultOptions: [{ allowClasses: [] }],
  create(context, [options]) {
    const allowed = new Set(options.allowClasses ?? []);
    const services = typeServices(context);

    function enclosingClass(node: TSESTree.Node): ClassNode | undefined {
      for (let n = node.parent; n; n = n.parent) {
        if (
          n.type === AST_NODE_TYPES.ClassDeclaration ||
          n.type === AST_NODE_TYPES.ClassExpression
        ) {
          return n;
        }
      }
      return undefined;
    }

    function isExempt(cls: ClassNode | undefined): boolean {
      if (!cls) return false;
      if (cls.id && allowed.has(cls.id.name)) return true;
      const implementsContext = (cls.implements ?? []).some((clause) => {
        const e = clause.expression;
        if (e.type === AST_NODE_TYPES.Identifier)
          return importedName(context, e) === "Context" || e.name === "Context";
        return (
          e.type === AST_NODE_TYPES.MemberExpression &&
          e.object.type === AST_NODE_TYPES.Identifier &&
          importedName(context, e.object) === "*" &&
          memberName(e) === "Context"
        );
      });
      if (implementsContext) return true;
      if (!services) return false;
      const checker = services.program.getTypeChecker();
      return isContextType(checker, services.getTypeAtLocation(cls));
    }

    function isContextProperty(
      node:
        | TSESTree.PropertyDefinition
        | TSESTree.AccessorProperty
        | TSESTree.TSAbstractPropertyDefinition,
    ): boolean {
      const annotation = node.typeAnnotation?.typeAnnotation;
      if (annotation) return isContextTypeNode(context, annotation);
      return node.value !== null && isContextExpression(context, node.value);
    }

    // A field or module variable typed as a collection of contexts
    // (`Context[]`, `Set<Context>`, `Map<string, Context>`, …), by its written
    // type or, with type information, by its inferred one.
    function isContextCollection(
      annotation: TSESTree.TypeNode | undefined,
      value: TSESTree.Node | null | undefined,
    ): boolean {
      if (annotation && isContextCollectionTypeNode(annotation)) return true;
      if (!services) return false;
      const checker = services.program.getTypeChecker();
      if (annotation) {
        const tsNode = services.esTreeNodeToTSNodeMap.get(annotation) as ts.TypeNode;
        return isContextCollectionType(checker, checker.getTypeFromTypeNode(tsNode));
      }
      return value ? isContextCollectionType(checker, services.getTypeAtLocation(value)) : false;
    }

    function isContextCollectionTypeNode(node: TSESTree.TypeNode): boolean {
      switch (node.type) {
        case AST_NODE_TYPES.TSArrayType:
          return isContextTypeNode(context, node.elementType);
        case AST_NODE_TYPES.TSTypeOperator:
          return (
            node.operator === "readonly" &&
            node.typeAnnotation !== undefined &&
            isContextCollectionTypeNode(node.typeAnnotation)
          );
        case AST_NODE_TYPES.TSUnionType:
          return node.types.some(isContextCollectionTypeNode);
        case AST_NODE_TYPES.TSTypeReference: {
          const name = node.typeName.type === AST_NODE_TYPES.Identifier ? node.typeName.name : "";
          const skip = COLLECTIONS.get(name);
          return (
            skip !== undefined &&
            (node.typeArguments?.params ?? [])
              .slice(skip)
              .some((t) => isContextTypeNode(context, t))
          );
        }
        default:
          return false;
      }
    }

    function holdsContexts(node: TSESTree.NewExpression): boolean {
      // A WeakMap's keys, a WeakSet's or a WeakRef's contents are held weakly:
      // they keep no context alive.
      const callee = node.callee.type === AST_NODE_TYPES.Identifier ? node.callee.name : "";
      if (callee === "WeakSet" || callee === "WeakRef") return false;
      const skip = callee === "WeakMap" ? 1 : 0;
      const written = node.typeArguments?.params.slice(skip);
      if (written?.some((t) => isContextTypeNode(context, t))) return true;
      if (written || !services) return false;
      const checker = services.program.getTypeChecker();
      const type = services.getTypeAtLocation(node);
      if (!(type.flags & ts.TypeFlags.Object)) return false;
      return checker
        .getTypeArguments(type as ts.TypeReference)
        .slice(skip)
        .some((t) => isContextType(checker, t));
    }

    function atModuleLevel(node: TSESTree.Node): boolean {
      for (let n = node.parent; n; n = n.parent) if (isFunction(n)) return false;
      return true;
    }

    // Fields and module variables reported as collections: the `new Map()`
    // that initializes one is not reported again.
    const collections = new Set<TSESTree.Node>();

    type Field =
      | TSESTree.PropertyDefinition
      | TSESTree.AccessorProperty
      | TSESTree.TSAbstractPropertyDefinition;

    // What a field declaration is reported as, if it is: by its written type
    // or its initializer, not by what is assigned to it later.
    function fieldStore(node: Field): "context" | "collection" | undefined {
      if (isExempt(enclosingClass(node))) return undefined;
      if (isContextProperty(node)) return "context";
      if (isContextCollection(node.typeAnnotation?.typeAnnotation, node.value)) return "collection";
      return undefined;
    }

    function checkProperty(node: Field) {
      const name = keyName(node.key) ?? "…";
      switch (fieldStore(node)) {
        case "context":
          context.report({
            node,
            messageId: "stored",
            data: { where: `the class field \`${name}\`` },
          });
          return;
        case "collection":
          collections.add(node);
          context.report({
            node,
            messageId: "stored",
            data: { where: `the collection in the class field \`${name}\`` },
          });
          return;
      }
    }

    function isContextParameterProperty(node: TSESTree.TSParameterProperty): boolean {
      const annotation = typeAnnotationOf(node);
      return annotation !== undefined && isContextTypeNode(context, annotation);
    }

    // Whether the class's own declaration of a field is reported: a field, or a
    // constructor parameter property, typed as (or initialized with) a Context.
    function declarationReported(cls: ClassNode, name: string | undefined): boolean {
      return cls.body.body.some((m) => {
        switch (m.type) {
          case AST_NODE_TYPES.PropertyDefinition:
          case AST_NODE_TYPES.AccessorProperty:
          case AST_NODE_TYPES.TSAbstractPropertyDefinition:
            return keyName(m.key) === name && fieldStore(m) !== undefined;
          case AST_NODE_TYPES.MethodDefinition:
            return (
              m.kind === "constructor" &&
              m.value.params.some(
                (p) =>
                  p.type === AST_NODE_TYPES.TSParameterProperty &&
                  parameterPropertyName(p) === name &&
                  isContextParameterProperty(p),
              )
            );
          default:
            return false;
        }
      });
    }

    return {
      PropertyDefinition: checkProperty,
      AccessorProperty: checkProperty,
      TSAbstractPropertyDefinition: checkProperty,
      TSParameterProperty(node) {
        if (!isContextParameterProperty(node)) return;
        if (isExempt(enclosingClass(node))) return;
        const name = parameterPropertyName(node) ?? "…";
        context.report({
          node,
          messageId: "stored",
          data: { where: `the parameter property \`${name}\`` },
        });
      },
      AssignmentExpression(node) {
        const left = node.left;
        if (left.type !== AST_NODE_TYPES.MemberExpression) return;
        if (!isContextExpression(context, node.right)) return;
        if (left.object.type === AST_NODE_TYPES.ThisExpression) {
          const cls = enclosingClass(node);
          if (isExempt(cls)) return;
          const name = left.computed ? undefined : keyName(left.property);
          // A field whose declaration is reported is reported there, once.
          if (cls && declarationReported(cls, name)) return;
          context.report({ node, messageId: "stored", data: { where: `\`this.${name ?? "…"}\`` } });
        }
      },
      NewExpression(node) {
        if (!atModuleLevel(node) && !inClassField(node)) return;
        if (collections.has(holderOf(node) ?? node)) return;
        if (holdsContexts(node)) {
          context.report({ node, messageId: "stored", data: { where: "a long-lived collection" } });
        }
      },
      VariableDeclarator(node) {
        if (!atModuleLevel(node) || node.id.type !== AST_NODE_TYPES.Identifier) return;
        const annotation = node.id.typeAnnotation?.typeAnnotation;
        // A module-level collection lives as long as the process, `const` or not.
        if (isContextCollection(annotation, node.init)) {
          collections.add(node);
          context.report({
            node,
            messageId: "stored",
            data: { where: `the module-level collection \`${node.id.name}\`` },
          });
          return;
        }
        if (node.parent.kind === "const") return;
        const isContext = annotation
          ? isContextTypeNode(context, annotation)
          : isContextExpression(context, node.id);
        if (!isContext) return;
        const variable = context.sourceCode.getDeclaredVariables(node)[0];
        const writtenLater = variable?.references.some(
          (r) => r.isWrite() && r.from.variableScope !== variable.scope.variableScope,
        );
        if (writtenLater) {
          context.report({
            node,
            messageId: "stored",
            data: { where: `the module variable \`${node.id.name}\`` },
          });
        }
      },
    };
  },
});

// The collections that hold their elements strongly, and how many of their
// type arguments to skip before the elements: a WeakMap holds its keys weakly
// but its values strongly; a WeakSet or a WeakRef holds nothing strongly.
const COLLECTIONS: ReadonlyMap<string, number> = new Map([
  ["Array", 0],
  ["ReadonlyArray", 0],
  ["Set", 0],
  ["ReadonlySet", 0],
  ["Map", 0],
  ["ReadonlyMap", 0],
  ["WeakMap", 1],
]);

/** isContextCollectionType reports whether a type is one of COLLECTIONS (or an array) holding contexts. */
function isContextCollectionType(checker: ts.TypeChecker, type: ts.Type): boolean {
  if (type.isUnion()) return type.types.some((t) => isContextCollectionType(checker, t));
  if (!(type.flags & ts.TypeFlags.Object)) return false;
  if (!((type as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference)) return false;
  const skip = checker.isArrayType(type) ? 0 : COLLECTIONS.get(type.getSymbol()?.name ?? "");
  if (skip === undefined) return false;
  return checker
    .getTypeArguments(type as ts.TypeReference)
    .slice(skip)
    .some((t) => isContextType(checker, t));
}

/** holderOf returns the class field or variable declarator whose initializer holds a node. */
function holderOf(node: TSESTree.Node): TSESTree.Node | undefined {
  for (let n = node.parent; n; n = n.parent) {
    if (isFunction(n)) return undefined;
    if (
      n.type === AST_NODE_TYPES.PropertyDefinition ||
      n.type === AST_NODE_TYPES.AccessorProperty ||
      n.type === AST_NODE_TYPES.VariableDeclarator
    ) {
      return n;
    }
  }
  return undefined;
}

/** keyName returns the name of a property key: `x`, `#x` or `"x"`. */
function keyName(key: TSESTree.Node): string | undefined {
  if (key.type === AST_NODE_TYPES.Identifier) return key.name;
  if (key.type === AST_NODE_TYPES.PrivateIdentifier) return `#${key.name}`;
  if (key.type === AST_NODE_TYPES.Literal && typeof key.value === "string") return key.value;
  return undefined;
}

/** parameterPropertyName returns the name a constructor parameter property declares. */
function parameterPropertyName(node: TSESTree.TSParameterProperty): string | undefined {
  const p =
    node.parameter.type === AST_NODE_TYPES.AssignmentPattern ? node.parameter.left : node.parameter;
  return p.type === AST_NODE_TYPES.Identifier ? p.name : undefined;
}

/** inClassField reports whether a node is part of a class field's initializer. */
function inClassField(node: TSESTree.Node): boolean {
  for (let n = node.parent; n; n = n.parent) {
    if (isFunction(n)) return false;
    if (n.type === AST_NODE_TYPES.PropertyDefinition) return true;
  }
  return false;
}
