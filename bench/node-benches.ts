/**
 * `npm run bench:node`: the load benchmarks of taproot/node and of the
 * integrations, one after another, each in a process of its own. Every one
 * runs whatever the one before it found, so a failing bar cannot hide the
 * figures of the rest; the exit code is 1 if any failed, and the summary at
 * the end says which.
 *
 * - bench/node-load.ts: taproot/node (churn, serve(), requestContext())
 * - bench/frameworks-load.ts: the Fastify, Hono and Connect integrations
 * - bench/rpc-load.ts: taproot-context/grpc
 *
 * Arguments pick some by name: `tsx bench/node-benches.ts frameworks-load rpc-load`.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const all = ["node-load", "frameworks-load", "rpc-load"];
const picked = process.argv.slice(2);
const unknown = picked.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  console.error(
    `bench/node-benches.ts: unknown bench ${unknown.join(", ")}; pick from ${all.join(", ")}`,
  );
  process.exit(2);
}

/** run runs one bench to its end and returns its exit code (1 if a signal ended it). */
function run(name: string): Promise<number> {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", file], { stdio: "inherit" });
  return new Promise((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
}

const results: [string, number][] = [];
for (const name of picked.length > 0 ? picked : all) {
  console.log(`\n=== bench/${name}.ts ===`);
  results.push([name, await run(name)]);
}
console.log(`\n=== bench:node summary ===`);
for (const [name, code] of results)
  console.log(
    `${code === 0 ? "pass" : "FAIL"}  bench/${name}.ts${code === 0 ? "" : ` (exit ${code})`}`,
  );
if (results.some(([, code]) => code !== 0)) process.exitCode = 1;
