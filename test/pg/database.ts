// A fresh database per test file on the run's PostgreSQL (DATABASE_URL, as
// `npm test` sets it through scripts/with-postgres.ts; when it is unset, as
// under a bare `node --import tsx --test test/pg/x.test.ts`, an embedded server
// is started for this process and stopped when its last database is dropped).
import { randomBytes } from "node:crypto";
import { after, before } from "node:test";
import pg from "pg";
import { startPostgres, type Postgres } from "../../scripts/postgres.js";

/** A database made for one test file. */
export interface TestDatabase {
  /** Its connection string. */
  url: string;
  /** Its name, e.g. `taproot_test_3f9a0c1b2d4e`. */
  name: string;
  /** Drops it (ending any session still connected). Idempotent. */
  drop(): Promise<void>;
}

let server: Promise<Postgres> | undefined;
let open = 0;

/**
 * createTestDatabase creates an empty database with a unique name on the run's
 * PostgreSQL and returns its URL. Drop it when the file is done.
 *
 * @example
 * const db = await createTestDatabase();
 * after(() => db.drop());
 * const pool = new pg.Pool({ connectionString: db.url });
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  server ??= startPostgres();
  const { url: adminUrl } = await server;
  open++;
  const name = `taproot_test_${randomBytes(6).toString("hex")}`;
  await admin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropping: Promise<void> | undefined;
  return {
    url: url.toString(),
    name,
    drop() {
      dropping ??= (async () => {
        try {
          await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } finally {
          if (--open === 0 && server) {
            const running = server;
            server = undefined;
            await (await running).stop();
          }
        }
      })();
      return dropping;
    },
  };
}

/** What useTestDatabase gives a test file: its database, and a pool on it for looking on. */
export interface TestDatabaseFixture {
  /** The file's database; read it in tests and hooks, not at module load. */
  readonly db: TestDatabase;
  /** A pool on that database for the test's own inspection (pg_stat_activity, tables), apart from the pools under test. */
  readonly admin: pg.Pool;
}

/**
 * useTestDatabase registers a `before` hook that creates a fresh database
 * (createTestDatabase) and an admin pool on it (`adminOptions`, e.g.
 * `{ max: 2 }`), then runs `setUp` (creating tables, say), and an `after`
 * hook that ends the pool and drops the database. Its fields throw when read
 * before the hook ran.
 *
 * @example
 * const fixture = useTestDatabase({ max: 2 }, (admin) =>
 *   admin.query("create table items (id serial primary key)"),
 * );
 * it("…", async () => {
 *   const pool = new pg.Pool({ connectionString: fixture.db.url });
 * });
 */
export function useTestDatabase(
  adminOptions: pg.PoolConfig = { max: 1 },
  setUp?: (admin: pg.Pool) => Promise<unknown>,
): TestDatabaseFixture {
  let db: TestDatabase | undefined;
  let admin: pg.Pool | undefined;
  before(async () => {
    db = await createTestDatabase();
    admin = new pg.Pool({ ...adminOptions, connectionString: db.url });
    await setUp?.(admin);
  });
  after(async () => {
    await admin?.end();
    await db?.drop();
  });
  const early = (what: string): never => {
    throw new Error(`useTestDatabase(): ${what} read before the before() hook made it`);
  };
  return {
    get db() {
      return db ?? early("db");
    },
    get admin() {
      return admin ?? early("admin");
    },
  };
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
