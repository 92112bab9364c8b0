import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { RuleTester, type RunTests } from "@typescript-eslint/rule-tester";
import type { TSESLint } from "@typescript-eslint/utils";

// The RuleTester reports through node:test.
RuleTester.afterAll = after;
RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

/** fixtures is the directory whose tsconfig.json type-checks the test samples (as file.ts). */
export const fixtures = fileURLToPath(new URL("./fixtures", import.meta.url));

const typedTester = new RuleTester({
  languageOptions: {
    parserOptions: {
      projectService: { allowDefaultProject: ["*.ts*"] },
      tsconfigRootDir: fixtures,
    },
  },
});

const untypedTester = new RuleTester();

/**
 * testRule runs a rule's cases twice over: `typed` with type information (the
 * samples see ./fixtures/taproot as "taproot-context"), `untyped` with the TypeScript
 * parser alone, as in a project without `parserOptions.projectService`.
 */
export function testRule<MessageIds extends string, Options extends readonly unknown[]>(
  name: string,
  // The rule tester bundles its own copy of @typescript-eslint/utils, whose
  // types differ from ours in name only: the rule is passed through unchecked.
  rule: TSESLint.RuleModule<MessageIds, Options, unknown>,
  tests: { typed: RunTests<MessageIds, Options>; untyped?: RunTests<MessageIds, Options> },
): void {
  type TesterRule = Parameters<typeof typedTester.run<MessageIds, Options>>[1];
  typedTester.run(name, rule as unknown as TesterRule, tests.typed);
  if (tests.untyped) {
    untypedTester.run(
      `${name} (without type information)`,
      rule as unknown as TesterRule,
      tests.untyped,
    );
  }
}
