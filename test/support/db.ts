/**
 * A fresh database per test file: on the Postgres server of this machine (TEST_DATABASE_URL, default
 * postgresql://postgres@127.0.0.1:5432/postgres), created empty and dropped afterwards; or PGlite in memory.
 */
import { basename } from 'node:path';
import pg from 'pg';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export async function freshPostgres(testFile: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `ganvas_${basename(testFile).replace(/\W+/g, '_')}_${process.pid}`.toLowerCase().slice(0, 60);
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}
