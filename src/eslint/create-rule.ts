import { ESLintUtils } from "@typescript-eslint/utils";

/**
 * Where the rule pages live: the `docs/rules/` folder that ships inside the
 * package, so an editor's "show documentation" opens the page that matches
 * the installed version, offline.
 */
export const DOCS_BASE_URL = new URL("../../docs/rules/", import.meta.url).href;

/** TaprootRuleDocs is the extra metadata every taproot rule declares in `meta.docs`. */
export interface TaprootRuleDocs {
  /** The severity the rule has in `configs.recommended`. */
  recommended: "error" | "warn";
  /** True when the rule sees more with type information (`parserOptions.projectService`). */
  usesTypeInformation: boolean;
}

/** createRule builds a rule whose `meta.docs.url` points at its page under `docs/rules/`. */
export const createRule = ESLintUtils.RuleCreator<TaprootRuleDocs>(
  (name) => `${DOCS_BASE_URL}${name}.md`,
);
