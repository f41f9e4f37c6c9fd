/**
 * Applies prisma/migrations in name order and records each in _prisma_migrations with the columns and
 * sha256 checksums `prisma migrate deploy` uses, so Prisma's own tooling sees the same history. Runs on
 * Postgres (under an advisory lock, so concurrent starters don't race) and on PGlite.
 * `npm run db:migrate` runs it against DATABASE_URL.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Database } from './database.ts';
import { messageOf } from '../errors.ts';

const MIGRATIONS_DIR = resolve(__dirname, '../../prisma/migrations');
const LOCK_KEY = 72707369;

const HISTORY_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export async function migrate(db: Database, log: (line: string) => void = () => {}): Promise<string[]> {
  const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const applied: string[] = [];
  await db.exclusive(LOCK_KEY, async () => {
    await db.exec(HISTORY_TABLE);
    const done = await db.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
    );
    for (const name of names) {
      const sql = await readFile(join(MIGRATIONS_DIR, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const previous = done.find((d) => d.migration_name === name);
      if (previous?.finished_at) {
        if (previous.checksum !== checksum) log(`warning: migration ${name} was changed after it was applied`);
        continue;
      }
      if (previous)
        throw new Error(
          `migration ${name} failed earlier; fix the database and mark it rolled back before deploying again`,
        );
      const id = randomUUID();
      await db.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name) VALUES ($1, $2, $3)', [
        id,
        checksum,
        name,
      ]);
      try {
        await db.exec(`BEGIN;\n${sql}\nCOMMIT;`);
      } catch (err) {
        await db.exec('ROLLBACK').catch(() => {});
        await db.query('UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1', [id, String(err)]);
        throw new Error(`migration ${name} failed: ${messageOf(err)}`, { cause: err });
      }
      await db.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [
        id,
      ]);
      applied.push(name);
      log(`applied migration ${name}`);
    }
  });
  return applied;
}
