import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import ts from "typescript";
import { createRule } from "../create-rule.js";
import { typeServices } from "../services.js";
import { findVariable, memberName, taprootCallName, unwrap } from "../taproot.js";
import { isContextExpression } from "../types.js";

type MessageIds = "untypedKey" | "untypedLookup";

/**
 * typed-keys reports `withValue` called with a string, number, boolean or
 * `Symbol.for(…)` key, and `ctx.value(…)` looking one up: such keys collide
 * across packages and give back `unknown`. A key made by `createKey` is unique
 * and typed.
 */
export default createRule<[], MessageIds>({
  name: "typed-keys",
  meta: {
    type: "problem",
    docs: {
      description:
        "Require context value keys made by `createKey` instead of strings, numbers or `Symbol.for`",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      untypedKey:
        "withValue() with {{kind}} key can collide with any other code that picks the same key, and the value comes back as `unknown`; use a key made by createKey<T>(name): it is unique to your module and makes ctx.value(key) return T.",
      untypedLookup:
        "ctx.value() with {{kind}} key finds whatever any other code stored under the same key, typed `unknown`; look values up with a key made by createKey<T>(name), exported by the module that sets them.",
    },
  },
  defaultOptions: [],
  create(context) {
    const services = typeServices(context);

    // Describes a key that is not a unique object or Key, or returns undefined.
    function describe(node: TSESTree.Node, seen = new Set<TSESTree.Node>()): string | undefined {
      const key = unwrap(node);
      if (seen.has(key)) return undefined;
      seen.add(key);
      if (key.type === AST_NODE_TYPES.Literal) {
        if (typeof key.value === "string") return "a string";
        if (typeof key.value === "number" || typeof key.value === "bigint") return "a number";
        if (typeof key.value === "boolean") return "a boolean";
        return undefined;
      }
      if (key.type === AST_NODE_TYPES.TemplateLiteral) return "a string";
      if (key.type === AST_NODE_TYPES.CallExpression) {
        const callee = unwrap(key.callee);
        if (
          callee.type === AST_NODE_TYPES.MemberExpression &&
          callee.object.type === AST_NODE_TYPES.Identifier &&
          callee.object.name === "Symbol" &&
          memberName(callee) === "for"
        ) {
          return "a Symbol.for()";
        }
      }
      if (key.type === AST_NODE_TYPES.Identifier) {
        const def = findVariable(context, key)?.defs[0];
        if (
          def?.type === "Variable" &&
          def.parent.kind === "const" &&
          def.node.id === def.name &&
          def.node.init
        ) {
          const found = describe(def.node.init, seen);
          if (found) return found;
        }
      }
      if (!services) return undefined;
      const type = services.getTypeAtLocation(key);
      if (type.flags & ts.TypeFlags.StringLike) return "a string";
      if (type.flags & (ts.TypeFlags.NumberLike | ts.TypeFlags.BigIntLike)) return "a number";
      if (type.flags & ts.TypeFlags.BooleanLike) return "a boolean";
      return undefined;
    }

    return {
      CallExpression(node) {
        if (taprootCallName(context, node) === "withValue") {
          const key = node.arguments[1];
          const kind = key && describe(key);
          if (kind) context.report({ node: key, messageId: "untypedKey", data: { kind } });
          return;
        }
        const callee = unwrap(node.callee);
        if (callee.type !== AST_NODE_TYPES.MemberExpression || memberName(callee) !== "value")
          return;
        const key = node.arguments[0];
        if (!key || node.arguments.length !== 1) return;
        const kind = describe(key);
        if (kind && isContextExpression(context, callee.object)) {
          context.report({ node: key, messageId: "untypedLookup", data: { kind } });
        }
      },
    };
  },
});
