import { AST_NODE_TYPES, type TSESTree } from "@typescript-eslint/utils";
import type { RuleFixer } from "@typescript-eslint/utils/ts-eslint";
import ts from "typescript";
import { contextInScope, resolvesTo } from "../ast.js";
import { createRule } from "../create-rule.js";
import { typeServices } from "../services.js";
import { findVariable, memberName, unwrap } from "../taproot.js";

type MessageIds = "missingSignal" | "missingSignalShadowed" | "addSignal";
type Options = [{ functions?: string[]; additionalFunctions?: string[] }];

// Where a function takes the options object that may carry `signal`: an
// argument index, the last argument, or any argument after the first.
type OptionsAt = number | "last" | "any";

/**
 * The functions checked by default: `module#name` for an export of a module
 * (with or without `node:`), a bare name for a global, and where each one
 * takes its options.
 */
export const DEFAULT_SIGNAL_FUNCTIONS: Readonly<Record<string, OptionsAt>> = {
  fetch: 1,
  "timers/promises#setTimeout": 2,
  "timers/promises#setImmediate": 1,
  "timers/promises#setInterval": 2,
  "events#once": 2,
  "events#on": 2,
  "child_process#exec": "any",
  "child_process#execFile": "any",
  "child_process#spawn": "any",
  "child_process#fork": "any",
  "stream/promises#pipeline": "last",
  "stream/promises#finished": 1,
};

// The names of the global object, through which a global is also reached.
const GLOBAL_OBJECTS: ReadonlySet<string> = new Set(["globalThis", "window", "self"]);

/** normalize turns `node:events#once` into `events#once`. */
function normalize(spec: string): string {
  return spec.replace(/^node:/, "");
}

/**
 * require-signal reports a call to an API that accepts an AbortSignal
 * (`fetch`, `timers/promises`, `events.once`, `child_process`,
 * `stream/promises` pipeline, …) made without one inside a function that has
 * a Context (golangci-lint's noctx).
 */
export default createRule<Options, MessageIds>({
  name: "require-signal",
  meta: {
    type: "problem",
    hasSuggestions: true,
    docs: {
      description:
        "Require passing the context's signal to APIs that accept one, inside functions that have a Context",
      recommended: "error",
      usesTypeInformation: true,
    },
    schema: [
      {
        type: "object",
        properties: {
          functions: {
            type: "array",
            items: { type: "string" },
            description:
              "Replaces the checked functions: `name` for a global, `module#name` for an import.",
          },
          additionalFunctions: {
            type: "array",
            items: { type: "string" },
            description: "Functions checked in addition to the defaults, in the same form.",
          },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      missingSignal:
        "{{fn}}() is called without a signal inside a function that has the Context `{{ctx}}`, so it goes on after `{{ctx}}` is canceled or its deadline passes; pass `signal: {{ctx}}.signal` in its options.",
      missingSignalShadowed:
        "{{fn}}() is called without a signal inside a function that has the Context `{{ctx}}`, so it goes on after `{{ctx}}` is canceled or its deadline passes; `{{ctx}}` here is another variable that shadows the Context, so rename that one and pass `signal: {{ctx}}.signal` in its options.",
      addSignal: "Pass `signal: {{ctx}}.signal`.",
    },
  },
  defaultOptions: [{}],
  create(context, [options]) {
    const services = typeServices(context);
    const checked = new Map<string, OptionsAt>();
    if (options.functions) {
      for (const spec of options.functions) {
        checked.set(normalize(spec), DEFAULT_SIGNAL_FUNCTIONS[normalize(spec)] ?? "any");
      }
    } else {
      for (const [spec, at] of Object.entries(DEFAULT_SIGNAL_FUNCTIONS)) checked.set(spec, at);
    }
    for (const spec of options.additionalFunctions ?? []) {
      checked.set(normalize(spec), DEFAULT_SIGNAL_FUNCTIONS[normalize(spec)] ?? "any");
    }

    // The spec a callee matches: `module#name` for an import, `name` for a global.
    function specOf(callee: TSESTree.Node): string | undefined {
      const c = unwrap(callee);
      if (c.type === AST_NODE_TYPES.Identifier) {
        const variable = findVariable(context, c);
        if (!variable || variable.defs.length === 0) return c.name;
        const def = variable.defs[0]!;
        if (def.type !== "ImportBinding" || def.parent.type !== AST_NODE_TYPES.ImportDeclaration)
          return undefined;
        const spec = def.node;
        if (spec.type !== AST_NODE_TYPES.ImportSpecifier) return undefined;
        const imported =
          spec.imported.type === AST_NODE_TYPES.Identifier
            ? spec.imported.name
            : spec.imported.value;
        return `${normalize(def.parent.source.value)}#${imported}`;
      }
      if (
        c.type === AST_NODE_TYPES.MemberExpression &&
        c.object.type === AST_NODE_TYPES.Identifier
      ) {
        const name = memberName(c);
        const variable = findVariable(context, c.object);
        const def = variable?.defs[0];
        if (!name) return undefined;
        if (!variable || !def) {
          // `globalThis.fetch` (or `window.fetch`, `self.fetch`) is the global `fetch`.
          return GLOBAL_OBJECTS.has(c.object.name) ? name : `${c.object.name}.${name}`;
        }
        if (def.type !== "ImportBinding" || def.parent.type !== AST_NODE_TYPES.ImportDeclaration)
          return undefined;
        if (def.node.type === AST_NODE_TYPES.ImportSpecifier) return undefined;
        return `${normalize(def.parent.source.value)}#${name}`;
      }
      return undefined;
    }

    // Whether an argument may carry a signal: an object literal with `signal`
    // (or a spread we cannot see into), or a value whose type has `signal`;
    // without type information any non-literal value gets the benefit of the doubt.
    function carriesSignal(arg: TSESTree.Node | undefined): boolean {
      if (!arg) return false;
      const a = unwrap(arg);
      if (a.type === AST_NODE_TYPES.ObjectExpression) {
        return a.properties.some(
          (p) =>
            p.type === AST_NODE_TYPES.SpreadElement ||
            (!p.computed && p.key.type === AST_NODE_TYPES.Identifier && p.key.name === "signal") ||
            (p.key.type === AST_NODE_TYPES.Literal && p.key.value === "signal"),
        );
      }
      if (
        a.type === AST_NODE_TYPES.Literal ||
        a.type === AST_NODE_TYPES.TemplateLiteral ||
        a.type === AST_NODE_TYPES.ArrayExpression ||
        a.type === AST_NODE_TYPES.ArrowFunctionExpression ||
        a.type === AST_NODE_TYPES.FunctionExpression
      ) {
        return false;
      }
      if (!services) return true;
      const type = services.getTypeAtLocation(a);
      const parts = type.isUnion() ? type.types : [type];
      return parts.some((t) => t.getProperty("signal") !== undefined || t.flags & ts.TypeFlags.Any);
    }

    // Whether fetch's first argument is a Request that carries a signal. One
    // built in sight (`new Request(url, init)`, directly or through a
    // variable assigned once) carries the signal of its init, else that of the
    // request it copies; `new Request(url)` alone gets one that never aborts.
    // Any other Request (known by its type) carries whatever its maker gave it.
    function requestCarriesSignal(arg: TSESTree.Node, depth = 0): boolean {
      const built = requestBuilt(unwrap(arg));
      if (built) {
        if (built.arguments.some((a) => a.type === AST_NODE_TYPES.SpreadElement)) return true;
        const [input, init] = built.arguments;
        if (init && carriesSignal(init)) return true;
        return input !== undefined && depth < 4 && requestCarriesSignal(input, depth + 1);
      }
      if (!services) return false;
      const type = services.getTypeAtLocation(arg);
      const parts = type.isUnion() ? type.types : [type];
      return parts.every(
        (t) => t.getSymbol()?.name === "Request" && t.getProperty("signal") !== undefined,
      );
    }

    function requestBuilt(node: TSESTree.Node): TSESTree.NewExpression | undefined {
      if (node.type === AST_NODE_TYPES.NewExpression) {
        const c = node.callee;
        return c.type === AST_NODE_TYPES.Identifier && c.name === "Request" ? node : undefined;
      }
      if (node.type !== AST_NODE_TYPES.Identifier) return undefined;
      const variable = findVariable(context, node);
      const def = variable?.defs[0];
      if (!variable || def?.type !== "Variable" || def.node.id !== def.name) return undefined;
      if (!def.node.init) return undefined;
      if (variable.references.filter((r) => r.isWrite()).length > 1) return undefined;
      const init = unwrap(def.node.init);
      return init.type === AST_NODE_TYPES.NewExpression ? requestBuilt(init) : undefined;
    }

    function passesSignal(args: TSESTree.CallExpressionArgument[], at: OptionsAt): boolean {
      if (args.some((a) => a.type === AST_NODE_TYPES.SpreadElement)) return true;
      if (at === "last") return args.length > 1 && carriesSignal(args.at(-1));
      if (at === "any") return args.slice(1).some((a) => carriesSignal(a));
      return carriesSignal(args[at]);
    }

    function fix(node: TSESTree.CallExpression, at: OptionsAt, ctx: string) {
      const property = `signal: ${ctx}.signal`;
      const index = typeof at === "number" ? at : at === "last" ? node.arguments.length - 1 : -1;
      const options = index >= 0 ? node.arguments[index] : undefined;
      if (options?.type === AST_NODE_TYPES.ObjectExpression) {
        const first = options.properties[0];
        return (fixer: RuleFixer) =>
          first
            ? fixer.insertTextBefore(first, `${property}, `)
            : fixer.replaceText(options, `{ ${property} }`);
      }
      if (typeof at !== "number" || node.arguments.length > at) return undefined;
      const last = node.arguments.at(-1);
      const padding = ", undefined".repeat(at - node.arguments.length);
      const text = `${padding}, { ${property} }`;
      if (!last) return undefined;
      return (fixer: RuleFixer) => fixer.insertTextAfter(last, text);
    }

    return {
      CallExpression(node) {
        const spec = specOf(node.callee);
        if (spec === undefined) return;
        const at = checked.get(spec);
        if (at === undefined || passesSignal(node.arguments, at)) return;
        const [input] = node.arguments;
        if (spec === "fetch" && input && requestCarriesSignal(input)) return;
        const declaration = contextInScope(context, node);
        if (declaration === undefined) return;
        const ctx = declaration.name;
        const fn = context.sourceCode.getText(node.callee);
        if (!resolvesTo(context, node, declaration)) {
          // `ctx` here names another variable: no fix can say `ctx.signal`.
          context.report({ node, messageId: "missingSignalShadowed", data: { fn, ctx } });
          return;
        }
        const apply = fix(node, at, ctx);
        context.report({
          node,
          messageId: "missingSignal",
          data: { fn, ctx },
          suggest: apply ? [{ messageId: "addSignal", data: { ctx }, fix: apply }] : [],
        });
      },
    };
  },
});
