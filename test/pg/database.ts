// A fresh database per test file on the run's PostgreSQL (DATABASE_URL, as
// `npm test` sets it through scripts/with-postgres.ts; when it is unset, as
// under a bare `node --import tsx --test test/pg/x.test.ts`, an embedded server
// is started for this process and stopped when its last database is dropped).
import { randomBytes } from "node:crypto";
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

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
