/**
 * Shared by the Deno and Bun checks: where each binary is (installed from
 * the npm registry as a devDependency; a missing one fails the tests, it
 * never skips them), and how to run one and collect what it printed.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../../", import.meta.url));
export const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

/**
 * binary returns the path of a runtime's executable in node_modules. The
 * `deno` and `bun` packages' install scripts copy the platform package's
 * binary in place; under `npm ci --ignore-scripts` only the platform
 * package has it, so that is looked for too.
 */
export function binary(name: "deno" | "bun"): string {
  const arch = process.arch === "arm64" ? (name === "bun" ? "aarch64" : "arm64") : "x64";
  const candidates =
    name === "deno"
      ? [`node_modules/@deno/linux-${arch}-glibc/deno`, "node_modules/deno/deno"]
      : ["node_modules/bun/bin/bun.exe", `node_modules/@oven/bun-linux-${arch}/bin/bun`];
  for (const c of candidates) {
    const path = root + c;
    // bun.exe is a small placeholder until bun's install script replaces it.
    if (existsSync(path) && statSync(path).size > 1_000_000) return path;
  }
  throw new Error(
    `${name} is not installed: none of ${candidates.join(", ")} exists; run npm ci (with install scripts) to install the ${name} devDependency`,
  );
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** run runs `file` with `args` in the repository root, for at most `timeout` ms, and resolves with what it printed. */
export function run(file: string, args: string[], timeout: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        cwd: root,
        timeout,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, NO_COLOR: "1", DENO_DIR: root + "node_modules/.cache/deno" },
      },
      (error, stdout, stderr) => {
        const exit = error ? ((error as { code?: unknown }).code ?? null) : 0;
        resolve({ code: typeof exit === "number" ? exit : null, stdout, stderr });
      },
    );
  });
}

/** lastJson parses the last line of a fixture's output. */
export function lastJson(r: Run): Record<string, unknown> {
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(
      `fixture printed no JSON (exit ${r.code}); stdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
}

/**
 * The core's test files that run on another runtime: every top-level
 * test/*.test.ts except those that test the package with Node's own tooling
 * (esbuild over dist, the README and examples run under `node --import tsx`).
 */
export const NODE_TOOLING = new Set(["package.test.ts", "readme.test.ts", "examples.test.ts"]);

/** What taproot/node's disconnect-and-shutdown check prints on Node. */
export const NODE_CHECK = {
  gone: "ClientDisconnectedError",
  stuck: "ShutdownError",
  quickAnswered: true,
  completed: 1,
  canceled: 1,
};

/**
 * assertExitsWhileTimerPending checks a run of fixtures/deadline-exit*.mjs:
 * it printed "started" and exited 0 on its own, long before its deadline
 * timer (60 s) would have fired.
 */
export function assertExitsWhileTimerPending(r: Run, startedAt: number): void {
  assert.equal(
    r.stdout.trim(),
    "started",
    `stdout = ${JSON.stringify(r.stdout)}, stderr = ${r.stderr}`,
  );
  assert.equal(r.code, 0, `exit code = ${r.code}, want 0 (stderr: ${r.stderr})`);
  assert.ok(Date.now() - startedAt < 30_000, "the process waited for its 60 s deadline timer");
}

/**
 * assertFetchHandlerCheck checks the report of fixtures/fetch-handler-check.mjs:
 * a 200 answer, the deadline header's budget seen (0–5 s left), and a
 * request aborted by its client canceled with ClientDisconnectedError.
 */
export function assertFetchHandlerCheck(r: Run): void {
  const got = lastJson(r);
  assert.equal(got.status, 200);
  assert.ok(
    typeof got.left === "number" && got.left > 0 && got.left <= 5_000,
    `left = ${String(got.left)}, want (0, 5000]`,
  );
  assert.equal(
    got.slow,
    "ClientDisconnectedError",
    `an aborted request's cause = ${String(got.slow)}`,
  );
}
