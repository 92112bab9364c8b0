// scripts/with-postgres.ts CMD ARGS...: run CMD with DATABASE_URL pointing at a
// real PostgreSQL (DATABASE_URL itself when set, else an embedded one started by
// scripts/postgres.ts), then stop that server and exit with CMD's exit code.
// Dev tooling for `npm test` and `npm start`; not shipped.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { startPostgres } from "./postgres.js";

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  process.stderr.write("usage: node --import tsx scripts/with-postgres.ts CMD [ARGS...]\n");
  process.exit(2);
}

let postgres;
try {
  postgres = await startPostgres();
} catch (error) {
  process.stderr.write(
    `with-postgres: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
}

const child = spawn(command, args, {
  stdio: "inherit",
  env: { ...process.env, DATABASE_URL: postgres.url },
  // Its own process group, so each signal reaches it once, from us: a
  // terminal's Ctrl-C would otherwise hit it directly and again via npm and us.
  detached: true,
});

// Forward SIGINT/SIGTERM. The same signal often arrives here several times at
// once (the terminal's process group, then npm relaying it); forward one per
// burst so the app does not take a second SIGINT for "force quit".
const lastForwarded = new Map<NodeJS.Signals, number>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    const now = Date.now();
    if (now - (lastForwarded.get(signal) ?? -Infinity) < 200) return;
    lastForwarded.set(signal, now);
    child.kill(signal);
  });
}

const code = await new Promise<number>((resolve) => {
  child.once("error", (error) => {
    process.stderr.write(`with-postgres: could not run ${command}: ${error.message}\n`);
    resolve(127);
  });
  child.once("exit", (exitCode, signal) => {
    resolve(exitCode ?? 128 + (signal ? constants.signals[signal] : 0));
  });
});

try {
  await postgres.stop();
} catch (error) {
  process.stderr.write(
    `with-postgres: ${error instanceof Error ? error.message : String(error)}\n`,
  );
}
process.exit(code);
