// The text a tagged statement of postgres.js will send, read before it is sent.
//
// postgres.js builds a statement's text only as it goes on the wire
// (postgres 3.4, src/connection.js build(), src/types.js stringify()), from
// the template's strings and what each value puts between them:
// - a fragment (a Query: sql`…` or sql.unsafe(text)): its own text, built the
//   same way;
// - an array whose first element is a fragment: each one's text after a space;
// - an Identifier (sql("name")): the quoted name;
// - a Builder (sql(object), sql(rows, ...columns)): what its build() makes of
//   it, which depends on the text before it;
// - any other value: a parameter, `$n`.
// taggedText does the same with postgres.js's own classes, so that what
// contextSql reads for a BEGIN is the text the server gets.
import type { PostgresSql } from "./postgres-js.js";

/** A postgres.js Query as a fragment reads it. */
interface Fragment {
  strings: readonly string[];
  args: readonly unknown[];
}

/** postgres.js's classes of the values that put text in a statement, and the options Builder.build reads. */
interface Kinds {
  Query: new (...args: never[]) => Fragment;
  Identifier: new (...args: never[]) => { value: string };
  Builder: new (...args: never[]) => {
    build(before: string, parameters: unknown[], types: unknown[], options: unknown): string;
  };
  options: unknown;
}

/** The Kinds of each `sql` whose statement had a value that may be one of them: set on first use, never cleared. */
const kindsOfSql = new WeakMap<PostgresSql, Kinds>();

function kindsOf(sql: PostgresSql): Kinds {
  let kinds = kindsOfSql.get(sql);
  if (kinds !== undefined) return kinds;
  const make = sql as unknown as (value: unknown) => object;
  kinds = {
    // Built, never sent: postgres.js sends a query only once it is awaited or executed.
    Query: sql.unsafe("").constructor as Kinds["Query"],
    Identifier: make("x").constructor as Kinds["Identifier"],
    Builder: make([]).constructor as Kinds["Builder"],
    options: (sql as { options?: unknown }).options,
  };
  kindsOfSql.set(sql, kinds);
  return kinds;
}

/**
 * taggedText returns the text postgres.js will send for the tagged statement
 * `strings`, `values` of `sql`, parameters as `$1`. Without a value that may
 * put text of its own (all of postgres.js's kinds have a `then`), that is the
 * strings joined, at no further cost.
 */
export function taggedText(
  sql: PostgresSql,
  strings: readonly string[],
  values: readonly unknown[],
): string {
  for (let i = 0; i < values.length; i++) {
    if (mayPutText(values[i])) return text(kindsOf(sql), strings, values);
  }
  return strings.join("$1");
}

function mayPutText(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { then?: unknown; 0?: { then?: unknown } | null };
  return typeof v.then === "function" || typeof v[0]?.then === "function";
}

/** text is stringify() of postgres.js: `strings` with each value's text between them. */
function text(kinds: Kinds, strings: readonly string[], values: readonly unknown[]): string {
  let string = strings[0] as string;
  for (let i = 1; i < strings.length; i++) {
    string += valueText(kinds, string, values[i - 1]) + (strings[i] as string);
  }
  return string;
}

/** valueText is stringifyValue() of postgres.js: what `value` puts after `before`. */
function valueText(kinds: Kinds, before: string, value: unknown): string {
  if (value instanceof kinds.Builder) {
    try {
      return value.build(before, [], [], kinds.options);
    } catch {
      // postgres.js's build will throw the same, and the statement is refused unsent.
      return "$1";
    }
  }
  if (value instanceof kinds.Query) return text(kinds, value.strings, value.args);
  if (value instanceof kinds.Identifier) return value.value;
  const first = (value as { 0?: unknown } | null | undefined)?.[0];
  if (first instanceof kinds.Query) {
    return (value as Fragment[]).reduce(
      (acc, fragment) => acc + " " + text(kinds, fragment.strings, fragment.args),
      "",
    );
  }
  return "$1";
}
