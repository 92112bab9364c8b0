/**
 * taproot/eslint is an ESLint 9 (flat config) plugin that keeps context
 * plumbing honest: cancel functions that are called, contexts passed first and
 * never stored, no `null` where a Context belongs, no placeholder `todo()` left
 * behind. Every rule works on plain syntax and sees more with typescript-eslint's
 * type information (`parserOptions.projectService`).
 *
 * @example
 * ```js
 * // eslint.config.js
 * import tseslint from "typescript-eslint";
 * import taproot from "taproot-context/eslint";
 *
 * export default tseslint.config(tseslint.configs.recommended, taproot.configs.recommended);
 * ```
 *
 * @packageDocumentation
 */
import { createRequire } from "node:module";
import type { TSESLint } from "@typescript-eslint/utils";
import contextFirst from "./rules/context-first.js";
import lostCancel from "./rules/lost-cancel.js";
import noAwaitNullableDone from "./rules/no-await-nullable-done.js";
import noContextGrowthInLoop from "./rules/no-context-growth-in-loop.js";
import noDetachedRoot from "./rules/no-detached-root.js";
import noNullishContext from "./rules/no-nullish-context.js";
import noStoredContext from "./rules/no-stored-context.js";
import noTodo from "./rules/no-todo.js";
import requireSignal from "./rules/require-signal.js";
import typedKeys from "./rules/typed-keys.js";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

/** rules maps each rule name (without the `taproot/` prefix) to its implementation. */
export const rules = {
  "lost-cancel": lostCancel,
  "context-first": contextFirst,
  "no-todo": noTodo,
  "no-detached-root": noDetachedRoot,
  "no-stored-context": noStoredContext,
  "no-nullish-context": noNullishContext,
  "no-await-nullable-done": noAwaitNullableDone,
  "typed-keys": typedKeys,
  "require-signal": requireSignal,
  "no-context-growth-in-loop": noContextGrowthInLoop,
} satisfies Record<string, TSESLint.RuleModule<string, readonly unknown[]>>;

/** TaprootPlugin is the shape of the default export: an ESLint 9 plugin with its configs. */
export interface TaprootPlugin {
  meta: { name: string; version: string };
  rules: typeof rules;
  configs: { recommended: TSESLint.FlatConfig.Config };
}

const recommendedRules = Object.fromEntries(
  Object.entries(rules).map(([name, rule]) => [
    `taproot/${name}`,
    rule.meta.docs?.recommended ?? "error",
  ]),
) as TSESLint.FlatConfig.Rules;

/**
 * plugin is the taproot ESLint plugin. `plugin.configs.recommended` is a flat
 * config object that registers the plugin as `taproot` and turns on every rule:
 * errors, except `taproot/no-todo`, which warns so placeholders can be listed
 * without failing the build. It does not choose a parser: put it after
 * typescript-eslint's config, and give that `parserOptions.projectService` so the
 * rules can use type information.
 */
const plugin: TaprootPlugin = {
  meta: { name: "taproot-context/eslint", version },
  rules,
  configs: {
    recommended: {
      name: "taproot/recommended",
      plugins: {},
      rules: recommendedRules,
    },
  },
};
plugin.configs.recommended.plugins = { taproot: plugin as unknown as TSESLint.FlatConfig.Plugin };

export { plugin };
export default plugin;
