import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import { isFunction, isLoop } from "../ast.js";
import { createRule } from "../create-rule.js";
import { DERIVING_FUNCTIONS, findVariable, taprootCallName, unwrap } from "../taproot.js";

type MessageIds = "growth";

/**
 * no-context-growth-in-loop reports a context derived from itself and assigned
 * back to the same variable inside a loop, or inside a callback that assigns to
 * an outer variable (fatcontext): each pass adds a level to the chain.
 */
export default createRule<[], MessageIds>({
  name: "no-context-growth-in-loop",
  meta: {
    type: "problem",
    docs: {
      description:
        "Disallow deriving a context from itself in a loop or callback and assigning it back",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      growth:
        "`{{target}}` is derived from itself with {{fn}}() and assigned back {{where}}, so every {{pass}} adds a level to its chain: lookups and cancellation get slower and memory grows without bound; derive into a new variable scoped to the {{pass}} (`const child = {{fn}}({{target}}, …)`).",
    },
  },
  defaultOptions: [],
  create(context) {
    const text = (node: TSESTree.Node) => context.sourceCode.getText(node);

    // Where the growth happens between the assignment and the place the
    // assigned variable lives (`limit`), or undefined if it does not.
    function growthSite(
      node: TSESTree.Node,
      limit: TSESTree.Node | undefined,
      ownFunction: boolean,
    ) {
      for (let n = node.parent; n && n !== limit; n = n.parent) {
        if (isLoop(n)) return { where: "inside a loop", pass: "iteration" };
        if (isFunction(n)) {
          if (ownFunction) return undefined;
          return { where: "inside a callback", pass: "call" };
        }
      }
      return undefined;
    }

    return {
      AssignmentExpression(node) {
        if (node.operator !== "=") return;
        const call = unwrap(node.right);
        if (call.type !== AST_NODE_TYPES.CallExpression) return;
        const fn = taprootCallName(context, call);
        const parent = call.arguments[0];
        if (!fn || !DERIVING_FUNCTIONS.has(fn) || !parent) return;
        let target: TSESTree.Node | null = node.left;
        if (target.type === AST_NODE_TYPES.ArrayPattern) target = target.elements[0] ?? null;
        if (!target) return;
        const source = unwrap(parent);

        if (target.type === AST_NODE_TYPES.Identifier) {
          if (source.type !== AST_NODE_TYPES.Identifier) return;
          const variable = findVariable(context, target);
          if (!variable || variable !== findVariable(context, source)) return;
          // The variable lives in the scope of its declaration; a loop or a
          // function between it and the assignment makes the chain grow.
          const declared = variable.defs[0]?.node as TSESTree.Node | undefined;
          const home = variable.scope.block;
          const site = growthSite(node, home, false);
          if (!site) return;
          if (declared && site.pass === "iteration") {
            // A variable declared inside the loop starts afresh on every iteration.
            for (let n: TSESTree.Node | undefined = node.parent; n && n !== home; n = n.parent) {
              if (isLoop(n)) {
                if (declared.range[0] >= n.range[0] && declared.range[1] <= n.range[1]) return;
                break;
              }
            }
          }
          context.report({ node, messageId: "growth", data: { target: target.name, fn, ...site } });
          return;
        }

        if (target.type === AST_NODE_TYPES.MemberExpression && text(target) === text(source)) {
          const site = growthSite(node, undefined, true);
          if (site)
            context.report({
              node,
              messageId: "growth",
              data: { target: text(target), fn, ...site },
            });
        }
      },
    };
  },
});
