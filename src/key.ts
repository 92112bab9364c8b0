import { describeValue } from "./validate.js";

declare const keyType: unique symbol;

/**
 * Key is a typed key for {@link withValue} and `ctx.value()`: looking up a
 * `Key<T>` gives `T | undefined`. Keys are compared by identity, so two keys
 * with the same name never collide.
 *
 * @example
 * ```ts
 * export const tenantKey: Key<string> = createKey<string>("tenant");
 * const tenant = ctx.value(tenantKey); // string | undefined
 * ```
 */
export interface Key<T> {
  /** The name given to {@link createKey}, used only for printing. */
  readonly name: string;
  /** Carries `T` for the type checker; never set at run time. */
  readonly [keyType]?: T;
  toString(): string;
}

class KeyImpl {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

/**
 * createKey returns a new, unique key for request-scoped values. The name is
 * for printing only (`toString()`, `inspectTree`); two keys with the same
 * name are still different keys.
 *
 * @example
 * ```ts
 * const userKey = createKey<User>("user");
 * const ctx = withValue(parent, userKey, user);
 * ctx.value(userKey); // User | undefined
 * ```
 */
export function createKey<T>(name: string): Key<T> {
  if (typeof name !== "string") {
    throw new TypeError(
      `createKey(name): name must be a string, got ${describeValue(name)}; e.g. createKey<User>("user")`,
    );
  }
  return new KeyImpl(name) as Key<T>;
}
