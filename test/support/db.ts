/**
 * A fresh database per test file, created empty and dropped afterwards, on a real Postgres server:
 * TEST_DATABASE_URL if set; else the Postgres of this machine (postgresql://postgres@127.0.0.1:5432/postgres)
 * if it answers; else an embedded Postgres started for the test run (./embedded-postgres.ts).
 * TEST_PG_PROBE=host:port looks for the machine's Postgres elsewhere than 127.0.0.1:5432 (one where nothing
 * listens forces the embedded one).
 */
import { basename } from 'node:path';
import pg from 'pg';
import { createApiKey } from '../../src/auth/keys.ts';
import { openDatabase } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { embeddedPostgresUrl } from './embedded-postgres.ts';

let adminUrl: Promise<string> | null = null;

/** The URL of the server's `postgres` database, to create and drop databases with. */
export function postgresAdminUrl(): Promise<string> {
  adminUrl ??= (async () => {
    if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
    const local = `postgresql://postgres@${process.env.TEST_PG_PROBE || '127.0.0.1:5432'}/postgres`;
    const probe = new pg.Client({ connectionString: local, connectionTimeoutMillis: 3000 });
    try {
      await probe.connect();
      return local;
    } catch {
      return embeddedPostgresUrl();
    } finally {
      await probe.end().catch(() => {});
    }
  })();
  return adminUrl;
}

export async function freshPostgres(testFile: string): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = await postgresAdminUrl();
  const name = `ganvas_${basename(testFile).replace(/\W+/g, '_')}_${process.pid}`.toLowerCase().slice(0, 60);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh database with ganvas's tables and one API key, for tests that start ganvas processes on it. */
export async function migratedPostgres(
  testFile: string,
  keyName = basename(testFile),
): Promise<{ url: string; key: string; drop(): Promise<void> }> {
  const pgdb = await freshPostgres(testFile);
  const db = await openDatabase({ url: pgdb.url });
  try {
    await migrate(db);
    return { ...pgdb, key: (await createApiKey(db.prisma, keyName)).key };
  } finally {
    await db.close();
  }
}
