/**
 * A browser stand-in for the part of `node:test` the core's tests use:
 * describe/it/test/suite, before/after/beforeEach/afterEach, options
 * (skip, todo, timeout) and the test context's after/skip/todo/test/signal.
 * The bundler maps `node:test` here; runFile() is called by the page after
 * each test file is imported.
 */

type Fn = (t: TestContext) => unknown;
type Hook = () => unknown;

interface Options {
  skip?: boolean | string;
  todo?: boolean | string;
  only?: boolean;
  timeout?: number;
  concurrency?: number | boolean;
}

interface TestNode {
  kind: "test";
  name: string;
  options: Options;
  fn: Fn | undefined;
}

interface SuiteNode {
  kind: "suite";
  name: string;
  options: Options;
  children: (TestNode | SuiteNode)[];
  before: Hook[];
  after: Hook[];
  beforeEach: Hook[];
  afterEach: Hook[];
}

/** Result is one test's outcome, as the page reports it. */
export interface Result {
  file: string;
  name: string;
  status: "pass" | "fail" | "skip" | "todo";
  error?: string;
  ms: number;
}

const newSuite = (name: string, options: Options = {}): SuiteNode => ({
  kind: "suite",
  name,
  options,
  children: [],
  before: [],
  after: [],
  beforeEach: [],
  afterEach: [],
});

let root = newSuite("");
let current = root;

function args(a: unknown[]): [string, Options, Fn | undefined] {
  let name = "<anonymous>";
  let options: Options = {};
  let fn: Fn | undefined;
  for (const x of a) {
    if (typeof x === "string") name = x;
    else if (typeof x === "function") fn = x as Fn;
    else if (typeof x === "object" && x !== null) options = x as Options;
  }
  if (fn !== undefined && name === "<anonymous>" && fn.name !== "") name = fn.name;
  return [name, options, fn];
}

export function test(...a: unknown[]): Promise<void> {
  const [name, options, fn] = args(a);
  current.children.push({ kind: "test", name, options, fn });
  return Promise.resolve();
}
export const it = test;

export function describe(...a: unknown[]): Promise<void> {
  const [name, options, fn] = args(a);
  const s = newSuite(name, options);
  current.children.push(s);
  const parent = current;
  current = s;
  try {
    (fn as unknown as (() => void) | undefined)?.();
  } finally {
    current = parent;
  }
  return Promise.resolve();
}
export const suite = describe;

export const before = (fn: Hook): void => void current.before.push(fn);
export const after = (fn: Hook): void => void current.after.push(fn);
export const beforeEach = (fn: Hook): void => void current.beforeEach.push(fn);
export const afterEach = (fn: Hook): void => void current.afterEach.push(fn);

class Skip extends Error {}

/** Set while tests run (not while test files load): from then on, touching a Node-only module marks the test Node-only. */
let running = false;

function nodeOnlyError(what: string): Error {
  const e = new Error(`uses ${what}, which only Node has`);
  e.name = "NodeOnlyError";
  return e;
}

/** node:test's `mock`: Node-only, like t.mock. */
export const mock: unknown = new Proxy(
  {},
  {
    get(_t, p) {
      throw nodeOnlyError(`node:test mock.${String(p)}`);
    },
  },
);

/**
 * nodeOnly returns the stand-in for a Node module the bundle cannot have.
 * While a test file loads, its top-level setup (`v8.setFlagsFromString`,
 * `vm.runInNewContext("gc")`) gets inert stand-ins; once tests run, any use
 * throws a NodeOnlyError and the test is reported as skipped.
 */
export function nodeOnly(what: string): unknown {
  const target = function () {};
  return new Proxy(target, {
    get(_t, p) {
      if (typeof p === "symbol") return undefined;
      if (running) throw nodeOnlyError(`${what}.${p}`);
      return nodeOnly(`${what}.${p}`);
    },
    apply() {
      if (running) throw nodeOnlyError(`${what}()`);
      return nodeOnly(`${what}()`);
    },
    construct() {
      if (running) throw nodeOnlyError(`new ${what}()`);
      return nodeOnly(`new ${what}()`) as object;
    },
  });
}

/** TestContext is the `t` given to a test function. */
export class TestContext {
  readonly #afters: Hook[] = [];
  readonly #ctrl = new AbortController();
  readonly #subtests: Promise<void>[] = [];
  todoMarked = false;
  constructor(
    readonly name: string,
    readonly fullName: string,
    readonly file: string,
  ) {}
  get signal(): AbortSignal {
    return this.#ctrl.signal;
  }
  after(fn: Hook): void {
    this.#afters.push(fn);
  }
  skip(message?: string): void {
    throw new Skip(message ?? "skipped");
  }
  todo(): void {
    this.todoMarked = true;
  }
  diagnostic(message: string): void {
    console.log(`# ${this.fullName}: ${message}`);
  }
  plan(): void {}
  /** node:test's mocks (timers, functions) belong to the Node runner: a test that uses them is Node-only. */
  get mock(): never {
    throw nodeOnlyError("t.mock (node:test's mocks)");
  }
  test(...a: unknown[]): Promise<void> {
    const [name, options, fn] = args(a);
    const p = runTest(
      { kind: "test", name, options, fn },
      `${this.fullName} > ${name}`,
      this.file,
      [],
    );
    this.#subtests.push(p);
    return p;
  }
  async _finish(): Promise<void> {
    await Promise.all(this.#subtests);
    this.#ctrl.abort();
    for (const f of this.#afters.reverse()) await f();
  }
}

const results: Result[] = [];

function message(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}\n${err.stack ?? ""}`;
  return String(err);
}

async function withTimeout(p: unknown, ms: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      p,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms}ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function runTest(
  node: TestNode,
  fullName: string,
  file: string,
  eachHooks: SuiteNode[],
): Promise<void> {
  const start = performance.now();
  const record = (status: Result["status"], error?: string): void =>
    void results.push({ file, name: fullName, status, error, ms: performance.now() - start });
  if (node.options.skip !== undefined && node.options.skip !== false)
    return record("skip", String(node.options.skip));
  if (node.options.todo !== undefined && node.options.todo !== false) return record("todo");
  if (node.fn === undefined) return record("todo");
  const t = new TestContext(node.name, fullName, file);
  try {
    for (const s of eachHooks) for (const h of s.beforeEach) await h();
    await withTimeout(node.fn(t), node.options.timeout ?? 30_000, fullName);
    await t._finish();
    for (const s of [...eachHooks].reverse()) for (const h of s.afterEach) await h();
    record(t.todoMarked ? "todo" : "pass");
  } catch (err) {
    if (err instanceof Skip) record("skip", err.message);
    // The test reached for Node's process object (see nodeOnly in core.test.ts): Node-only by construction.
    else if (err instanceof Error && err.name === "NodeOnlyError") record("skip", err.message);
    else record(t.todoMarked ? "todo" : "fail", message(err));
  }
}

async function runSuite(
  s: SuiteNode,
  prefix: string,
  file: string,
  eachHooks: SuiteNode[],
): Promise<void> {
  const hooks = [...eachHooks, s];
  if (s.options.skip !== undefined && s.options.skip !== false) {
    for (const c of s.children)
      results.push({ file, name: `${prefix}${c.name}`, status: "skip", ms: 0 });
    return;
  }
  try {
    for (const h of s.before) await h();
  } catch (err) {
    results.push({ file, name: `${prefix}<before>`, status: "fail", error: message(err), ms: 0 });
    return;
  }
  for (const c of s.children) {
    const name = `${prefix}${c.name}`;
    if (c.kind === "test") await runTest(c, name, file, hooks);
    else await runSuite(c, `${name} > `, file, hooks);
  }
  try {
    for (const h of s.after) await h();
  } catch (err) {
    results.push({ file, name: `${prefix}<after>`, status: "fail", error: message(err), ms: 0 });
  }
}

/** runFile runs every test registered since the last call, under `file`'s name, and returns their results. */
export async function runFile(file: string): Promise<Result[]> {
  const s = root;
  root = current = newSuite("");
  const from = results.length;
  running = true;
  try {
    await runSuite(s, "", file, []);
  } finally {
    running = false;
  }
  return results.slice(from);
}

export default test;
