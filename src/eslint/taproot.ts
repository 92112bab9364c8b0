import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ASTUtils, AST_NODE_TYPES, type TSESLint, type TSESTree } from "@typescript-eslint/utils";
import ts from "typescript";
import { type AnyRuleContext, typeServices } from "./services.js";

// Recognizing taproot in source code: by import when the file says where a name
// comes from, and by declaration (through the type checker) when it does not,
// e.g. a re-export from the project's own barrel file.

/** The functions that return a `[Context, cancel]` pair whose cancel must be called. */
export const CANCEL_PAIR_FUNCTIONS: ReadonlySet<string> = new Set([
  "withCancel",
  "withCancelCause",
  "withTimeout",
  "withTimeoutCause",
  "withDeadline",
  "withDeadlineCause",
  "withSignal",
  "signalContext",
]);

/** The functions that derive a child context from the context passed first. */
export const DERIVING_FUNCTIONS: ReadonlySet<string> = new Set([
  ...CANCEL_PAIR_FUNCTIONS,
  "withValue",
  "withoutCancel",
]);

/** The functions that return a `Context` directly (not in a pair). */
export const CONTEXT_FUNCTIONS: ReadonlySet<string> = new Set([
  "background",
  "todo",
  "withValue",
  "withoutCancel",
  "requestContext",
]);

/** The functions whose first parameter is a `Context`. */
export const CONTEXT_FIRST_FUNCTIONS: ReadonlySet<string> = new Set([
  ...DERIVING_FUNCTIONS,
  "afterFunc",
  "cause",
  "sleep",
  "ticker",
]);

/** isTaprootModule reports whether an import specifier names taproot or one of its subpaths. */
export function isTaprootModule(specifier: string): boolean {
  return specifier === "taproot-context" || specifier.startsWith("taproot-context/");
}

/** unwrap returns the expression inside parentheses-free TypeScript wrappers (`x as T`, `x!`, `x satisfies T`). */
export function unwrap(node: TSESTree.Node): TSESTree.Node {
  let n = node;
  while (
    n.type === AST_NODE_TYPES.TSAsExpression ||
    n.type === AST_NODE_TYPES.TSNonNullExpression ||
    n.type === AST_NODE_TYPES.TSSatisfiesExpression ||
    n.type === AST_NODE_TYPES.TSTypeAssertion ||
    n.type === AST_NODE_TYPES.ChainExpression
  ) {
    n = n.expression;
  }
  return n;
}

/** findVariable returns the variable an identifier refers to, if it is declared in the file. */
export function findVariable(
  context: AnyRuleContext,
  id: TSESTree.Identifier,
): TSESLint.Scope.Variable | undefined {
  return ASTUtils.findVariable(context.sourceCode.getScope(id), id) ?? undefined;
}

/**
 * importedName returns the name a binding imports from taproot: `withTimeout`
 * for `import { withTimeout as wt } from "taproot-context"` and the identifier `wt`,
 * `"*"` for a namespace import (`import * as context`, `import context =
 * require(…)`), or undefined if the binding is not a taproot import.
 */
export function importedName(context: AnyRuleContext, id: TSESTree.Identifier): string | undefined {
  const def = findVariable(context, id)?.defs[0];
  if (def?.type !== "ImportBinding") return undefined;
  const declaration = def.parent;
  if (declaration.type === AST_NODE_TYPES.TSImportEqualsDeclaration) {
    // `import context = require("taproot-context")` binds the namespace.
    const ref = declaration.moduleReference;
    return ref.type === AST_NODE_TYPES.TSExternalModuleReference &&
      isTaprootModule(ref.expression.value)
      ? "*"
      : undefined;
  }
  if (
    declaration.type !== AST_NODE_TYPES.ImportDeclaration ||
    !isTaprootModule(declaration.source.value)
  ) {
    return undefined;
  }
  const spec = def.node;
  if (spec.type === AST_NODE_TYPES.ImportSpecifier) {
    return spec.imported.type === AST_NODE_TYPES.Identifier
      ? spec.imported.name
      : spec.imported.value;
  }
  if (spec.type === AST_NODE_TYPES.ImportNamespaceSpecifier) return "*";
  return undefined;
}

/** memberName returns the property name of `a.b` or `a["b"]`, or undefined if it is computed. */
export function memberName(node: TSESTree.MemberExpression): string | undefined {
  if (!node.computed && node.property.type === AST_NODE_TYPES.Identifier) return node.property.name;
  if (node.property.type === AST_NODE_TYPES.Literal && typeof node.property.value === "string") {
    return node.property.value;
  }
  return undefined;
}

/**
 * taprootName returns the taproot export an expression refers to (`withTimeout`
 * for `withTimeout`, `context.withTimeout` or an alias of either), or undefined.
 * Without an import in sight it asks the type checker where the name was declared.
 */
export function taprootName(context: AnyRuleContext, node: TSESTree.Node): string | undefined {
  const callee = unwrap(node);
  if (callee.type === AST_NODE_TYPES.Identifier) {
    const name = importedName(context, callee);
    if (name !== undefined) return name === "*" ? undefined : name;
  } else if (callee.type === AST_NODE_TYPES.MemberExpression) {
    // `context.withTimeout` for a namespace import of taproot; any other
    // object (a namespace import of the project's own barrel) is left to the
    // type checker.
    if (
      callee.object.type === AST_NODE_TYPES.Identifier &&
      importedName(context, callee.object) === "*"
    ) {
      return memberName(callee);
    }
  } else {
    return undefined;
  }
  return declaredTaprootName(context, callee);
}

/** taprootCallName returns the taproot function a call invokes, or undefined. */
export function taprootCallName(
  context: AnyRuleContext,
  node: TSESTree.CallExpression,
): string | undefined {
  return taprootName(context, node.callee);
}

function declaredTaprootName(
  context: AnyRuleContext,
  node: TSESTree.Identifier | TSESTree.MemberExpression,
): string | undefined {
  const services = typeServices(context);
  if (!services) return undefined;
  const checker = services.program.getTypeChecker();
  const tsNode = services.esTreeNodeToTSNodeMap.get(
    node.type === AST_NODE_TYPES.MemberExpression ? node.property : node,
  );
  let symbol = checker.getSymbolAtLocation(tsNode);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const declaration = symbol?.declarations?.[0];
  if (!symbol || !declaration || !isFromTaproot(declaration)) return undefined;
  // A method of taproot's types (`ctx.done()`) is no export of taproot.
  if (ts.isClassElement(declaration) || ts.isTypeElement(declaration)) return undefined;
  return symbol.name;
}

/**
 * isFromTaproot reports whether a declaration belongs to taproot: it sits in a
 * `declare module "taproot…"` block, or in a file of the package named `taproot-context`.
 */
export function isFromTaproot(declaration: ts.Node): boolean {
  for (let n: ts.Node | undefined = declaration; n; n = n.parent) {
    if (ts.isModuleDeclaration(n) && ts.isStringLiteral(n.name) && isTaprootModule(n.name.text)) {
      return true;
    }
  }
  return packageNameOf(dirname(declaration.getSourceFile().fileName)) === "taproot-context";
}

// Directory → name of the package that owns it; filled as files are looked up.
const packageNames = new Map<string, string | undefined>();

function packageNameOf(dir: string): string | undefined {
  if (packageNames.has(dir)) return packageNames.get(dir);
  let name: string | undefined;
  const manifest = join(dir, "package.json");
  if (existsSync(manifest)) {
    try {
      const parsed = JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown };
      name = typeof parsed.name === "string" ? parsed.name : undefined;
    } catch {
      name = undefined;
    }
  } else {
    const parent = dirname(dir);
    name = parent === dir ? undefined : packageNameOf(parent);
  }
  packageNames.set(dir, name);
  return name;
}
