import { createRule } from "../create-rule.js";
import { taprootCallName } from "../taproot.js";

/**
 * no-todo reports every call of taproot's `todo()`, so the placeholders for
 * contexts that are not wired up yet can be listed and burned down.
 */
export default createRule<[], "todo">({
  name: "no-todo",
  meta: {
    type: "suggestion",
    docs: {
      description: "Report each `todo()` placeholder context so it can be wired up",
      recommended: "warn",
      usesTypeInformation: true,
    },
    schema: [],
    messages: {
      todo: "todo() is a placeholder for a context that is not wired up yet: this work ignores its caller's cancellation, deadline and values; pass the caller's `ctx` down to here (or call background() if this truly is a root).",
    },
  },
  defaultOptions: [],
  create(context) {
    return {
      CallExpression(node) {
        if (taprootCallName(context, node) === "todo") context.report({ node, messageId: "todo" });
      },
    };
  },
});
