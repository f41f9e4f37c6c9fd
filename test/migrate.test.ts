/**
 * The migration runner (src/db/migrate.ts) on Postgres, on migrations of its own: a migration whose process was
 * killed leaves nothing and is applied by the next run; one that fails is recorded with its error and refused
 * until marked rolled back. And one migration that moves data, from the rows of the release before it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { createApiKey } from '../src/auth/keys.ts';
import { openDatabase } from '../src/db/database.ts';
import { MIGRATIONS_DIR, migrate } from '../src/db/migrate.ts';
import { startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { tinyModelDir } from './support/model.ts';

const write = async (dir: string, name: string, sql: string) => {
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(join(dir, name, 'migration.sql'), sql);
};

test(
  'a killed migration leaves nothing and runs again; a failed one is recorded and refused',
  { timeout: 60_000 },
  async () => {
    const pgdb = await freshPostgres(__filename);
    const dir = await mkdtemp(join(tmpdir(), 'ganvas-migrations-'));
    await write(dir, '001_first', 'CREATE TABLE "first" (id int);');
    await write(dir, '002_slow', 'CREATE TABLE "second" (id int);\nSELECT pg_sleep(30);');
    const db = await openDatabase({ url: pgdb.url });
    const admin = new pg.Client({ connectionString: pgdb.url });
    await admin.connect();
    try {
      const running = migrate(db, () => {}, dir);
      // the second migration sleeps: kill its session, as a Job killed at its deadline would end it
      for (let i = 0; ; i++) {
        assert.ok(i < 200, 'the slow migration starts');
        const { rowCount } = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()`,
        );
        if (rowCount) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await assert.rejects(running);
      const history = async () =>
        (
          await admin.query<{ migration_name: string; finished: boolean }>(
            'SELECT migration_name, finished_at IS NOT NULL AS finished FROM "_prisma_migrations" ORDER BY migration_name',
          )
        ).rows;
      assert.deepEqual(await history(), [{ migration_name: '001_first', finished: true }]);
      await write(dir, '002_slow', 'CREATE TABLE "second" (id int);');
      assert.deepEqual(await migrate(db, () => {}, dir), ['002_slow']);
      // a migration that fails: rolled back, recorded with its error, refused until someone marks it rolled back
      await write(dir, '003_broken', 'CREATE TABLE "third" (id int);\nSELECT 1 / 0;');
      await assert.rejects(
        migrate(db, () => {}, dir),
        /migration 003_broken failed: division by zero/,
      );
      assert.equal((await admin.query(`SELECT to_regclass('"third"') AS t`)).rows[0].t, null);
      await assert.rejects(
        migrate(db, () => {}, dir),
        /failed earlier.*UPDATE "_prisma_migrations" SET rolled_back_at/,
      );
      await admin.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '003_broken'`);
      await write(dir, '003_broken', 'CREATE TABLE "third" (id int);');
      assert.deepEqual(await migrate(db, () => {}, dir), ['003_broken']);
    } finally {
      await admin.end();
      await db.close();
      await pgdb.drop();
    }
  },
);

test(
  'a migration that waits for a lock lets go after 5 s (not queueing the queries behind it) and tries again',
  { timeout: 60_000 },
  async () => {
    const pgdb = await freshPostgres(__filename);
    const dir = await mkdtemp(join(tmpdir(), 'ganvas-migrations-'));
    const db = await openDatabase({ url: pgdb.url });
    const admin = new pg.Client({ connectionString: pgdb.url });
    await admin.connect();
    try {
      await db.exec('CREATE TABLE "busy" (id int)');
      await write(dir, '001_busy', 'ALTER TABLE "busy" ADD COLUMN "more" int;');
      // a long transaction holds the table for 7 s
      await admin.query('BEGIN; LOCK TABLE "busy" IN ACCESS SHARE MODE');
      const released = new Promise((r) => setTimeout(r, 7_000)).then(() => admin.query('COMMIT'));
      const lines: string[] = [];
      const applying = migrate(db, (l) => lines.push(l), dir);
      await released;
      assert.deepEqual(await applying, ['001_busy']);
      assert.ok(
        lines.some((l) => /waited 5 s for a lock/.test(l)),
        lines.join('\n'),
      );
    } finally {
      await admin.end();
      await db.close();
      await pgdb.drop();
    }
  },
);

test('an API or a worker does not start on a Postgres database behind its release: it names the migration', async () => {
  const pgdb = await freshPostgres(`${__filename}-behind`);
  try {
    const config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url });
    for (const roles of [
      { api: true, worker: false, migrate: false },
      { api: false, worker: true, migrate: false },
    ])
      await assert.rejects(
        startServices(config, roles, silentLogger()),
        /the database is \d+ migration\(s\) behind this release \(20261129000000_init first\): run npm run db:migrate/,
      );
  } finally {
    await pgdb.drop();
  }
});

test('a service that migrates a new database says so in one line, and then that it is up to date', async () => {
  const pgdb = await freshPostgres(`${__filename}-lines`);
  try {
    const config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url });
    for (const want of [
      /^database schema: applied \d+ migration\(s\), up to \d+_\w+$/,
      /^database schema: up to date$/,
    ]) {
      const lines: string[] = [];
      const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l).msg) });
      const running = await startServices(config, { api: false, worker: false, migrate: true }, log);
      await running.stop();
      const schema = lines.filter((l) => /migration|schema/.test(l));
      assert.equal(schema.length, 1, schema.join('\n'));
      assert.match(schema[0], want);
    }
  } finally {
    await pgdb.drop();
  }
});

/** A fresh database with every migration before `name` applied (then the caller writes rows as they were then). */
async function migratedBefore(name: string, suffix: string) {
  const pgdb = await freshPostgres(`${__filename}-${suffix}`);
  const db = await openDatabase({ url: pgdb.url });
  const before = await mkdtemp(join(tmpdir(), 'ganvas-migrations-'));
  for (const m of await readdir(MIGRATIONS_DIR))
    if (/^\d+_/.test(m) && m < name) await cp(join(MIGRATIONS_DIR, m), join(before, m), { recursive: true });
  await migrate(db, () => {}, before);
  return { db, drop: async () => (await db.close(), await pgdb.drop()) };
}

test("the quota_steps migration counts the last day's requests in steps, open mode's too", async () => {
  const { db, drop } = await migratedBefore('20261205100000_quota_steps', 'steps');
  try {
    // requests of a key and of open mode as the table before it held them
    const key = '11111111-1111-4111-8111-111111111111';
    await db.query(
      `INSERT INTO "QuotaUse" ("apiKeyId", "images", "createdAt")
       VALUES ($1, 2, now() - interval '5 seconds'), ($1, 3, now() - interval '5 seconds'),
              ($1, 4, now() - interval '2 hours'), ($1, 9, now() - interval '25 hours'),
              (NULL, 1, now() - interval '10 seconds')`,
      [key],
    );
    await migrate(db);
    const steps = await db.query<{ owner: string; seconds: number; requests: number; images: number }>(
      `SELECT "owner", "seconds", "requests", "images" FROM "QuotaStep" ORDER BY "owner", "seconds", "at"`,
    );
    const zero = '00000000-0000-0000-0000-000000000000';
    // the two requests 5 s ago share their second and minute (unless a step's edge fell between them: not here, they
    // were written with one now()); the one 25 hours ago has left both windows
    assert.deepEqual(
      steps.map((t) => [t.owner, t.seconds, t.requests, t.images]),
      [
        [zero, 1, 1, 1],
        [zero, 60, 1, 1],
        [key, 1, 2, 5],
        [key, 60, 1, 4],
        [key, 60, 2, 5],
      ],
    );
  } finally {
    await drop();
  }
});

test("the jobs_by_owner migration gives the jobs queued before it their generation's owner and model", async () => {
  const { db, drop } = await migratedBefore('20261205110000_jobs_by_owner', 'jobs');
  try {
    const key = (await createApiKey(db.prisma, 'queued before')).id;
    await db.query(
      `WITH g AS (INSERT INTO "Generation" ("id", "kind", "captions", "seed", "model", "imageCount", "apiKeyId")
                  VALUES (gen_random_uuid(), 'TEXT_TO_IMAGE', ARRAY['a'], 1, 'm1', 1, $1),
                         (gen_random_uuid(), 'TEXT_TO_IMAGE', ARRAY['b'], 1, 'm2', 1, NULL) RETURNING "id")
       INSERT INTO "Job" ("generationId") SELECT "id" FROM g`,
      [key],
    );
    await migrate(db);
    const jobs = await db.query<{ owner: string; model: string }>(
      'SELECT "owner", "model" FROM "Job" ORDER BY "model"',
    );
    assert.deepEqual(
      jobs.map((j) => [j.owner, j.model]),
      [
        [key, 'm1'],
        ['00000000-0000-0000-0000-000000000000', 'm2'],
      ],
    );
  } finally {
    await drop();
  }
});
