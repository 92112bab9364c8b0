import { ESLintUtils } from "@typescript-eslint/utils";

/** Where the rule pages live; each rule links to `docs/rules/<rule>.md` there. */
export const DOCS_BASE_URL = "https://github.com/taproot-ts/taproot/blob/main/docs/rules/";

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
