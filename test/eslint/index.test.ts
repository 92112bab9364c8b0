import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import plugin, { rules } from "../../src/eslint/index.js";

const root = new URL("../../", import.meta.url);
const ruleFiles = readdirSync(new URL("src/eslint/rules/", root))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.replace(/\.ts$/, ""))
  .sort();

describe("taproot-context/eslint", () => {
  it("registers every rule file under its own name", () => {
    assert.deepEqual(Object.keys(rules).sort(), ruleFiles);
  });

  it("has a docs page and a test file for every rule, and links to the page", () => {
    for (const [name, rule] of Object.entries(rules)) {
      const page = new URL(`docs/rules/${name}.md`, root);
      assert.ok(existsSync(page), `docs/rules/${name}.md is missing`);
      assert.ok(
        existsSync(new URL(`test/eslint/rules/${name}.test.ts`, root)),
        `no test for ${name}`,
      );
      assert.ok(
        rule.meta.docs?.url?.endsWith(`/docs/rules/${name}.md`),
        `${name}: docs url ${rule.meta.docs?.url}`,
      );
      const text = readFileSync(page, "utf8");
      for (const part of [`# taproot/${name}`, "❌", "✅", "## Options", "## When not to use it"]) {
        assert.ok(text.includes(part), `docs/rules/${name}.md lacks ${JSON.stringify(part)}`);
      }
    }
  });

  it("turns every rule on in the recommended config, no-todo as a warning", () => {
    const config = plugin.configs.recommended;
    assert.equal(config.plugins?.taproot, plugin);
    const want = Object.fromEntries(
      Object.keys(rules).map((name) => [`taproot/${name}`, name === "no-todo" ? "warn" : "error"]),
    );
    assert.deepEqual(config.rules, want);
  });

  it("names itself with the package's version", () => {
    const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
      version: string;
    };
    assert.deepEqual(plugin.meta, { name: "taproot-context/eslint", version: pkg.version });
  });

  it("is what the taproot/eslint subpath exports once built", async () => {
    const built = (await import("taproot-context/eslint")) as { default: typeof plugin };
    assert.deepEqual(Object.keys(built.default.rules).sort(), ruleFiles);
    assert.equal(built.default.configs.recommended.plugins?.taproot, built.default);
  });
});
