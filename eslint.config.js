// @ts-check
import eslint from "@eslint/js";
import tseslint from "typescript-eslint";
// Dogfooding: the project's own plugin, as built by `npm run build` (which `npm run lint` runs first).
import taproot from "./dist/eslint/index.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", ".tmp/", ".tmp-*/"] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
    },
  },
  { files: ["**/*.js", "**/*.mjs"], extends: [tseslint.configs.disableTypeChecked] },
  { ...taproot.configs.recommended, files: ["src/**/*.ts", "examples/**/*.ts"] },
  {
    // taproot's API names the context a function derives from `parent`, as Go does.
    files: ["src/**/*.ts"],
    rules: { "taproot/context-first": ["error", { names: ["ctx", "parent"] }] },
  },
  {
    // The core implements Context rather than using it: its nodes hold their
    // parents, the root is built from no parent at all, and internal helpers
    // walk chains of nodes. The rules about using contexts do not apply there.
    files: ["src/*.ts"],
    rules: {
      "taproot/context-first": "off",
      "taproot/no-stored-context": "off",
      "taproot/no-nullish-context": "off",
    },
  },
);
