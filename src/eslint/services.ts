import type { ParserServicesWithTypeInformation } from "@typescript-eslint/utils";
import type { RuleContext } from "@typescript-eslint/utils/ts-eslint";

/** AnyRuleContext is the rule context of any taproot rule, whatever its options. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRuleContext = Readonly<RuleContext<string, readonly any[]>>;

/**
 * typeServices returns the parser's type information, or undefined when the
 * file was parsed without it (no `parserOptions.projectService`, or a file the
 * TypeScript parser did not read). Every rule works without it, and sees more
 * with it.
 */
export function typeServices(
  context: AnyRuleContext,
): ParserServicesWithTypeInformation | undefined {
  const services = context.sourceCode.parserServices;
  return services?.program && services.esTreeNodeToTSNodeMap
    ? (services as ParserServicesWithTypeInformation)
    : undefined;
}
