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

export const MIGRATIONS_DIR = resolve(__dirname, '../../prisma/migrations');
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

/** SQLSTATE of a lock not granted within lock_timeout. */
const LOCK_NOT_AVAILABLE = '55P03';

/** A SQL string literal. */
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/**
 * Whether a migration's own SQL failed (a Postgres error), rather than its session (ended by an operator or a
 * shutdown, SQLSTATE class 57; the connection lost, class 08 or a socket error): an interrupted one is not its fault.
 */
const failedItself = (err: unknown): boolean => {
  // the server's errors carry a severity (pg's and PGlite's alike); a socket's (EPIPE, ECONNRESET) do not
  const { code, severity } = err as { code?: unknown; severity?: unknown };
  // a lock it waited for in vain (LOCK_TRIES times) is the other transaction's doing too
  return (
    typeof severity === 'string' && typeof code === 'string' && !/^(08|57)/.test(code) && code !== LOCK_NOT_AVAILABLE
  );
};

/**
 * How long a migration waits for a table's lock (a long transaction holds it) before it lets go and tries again
 * a moment later: waiting on, it would queue every query of the serving release behind it.
 */
const LOCK_TIMEOUT_MS = 5_000;
const LOCK_TRIES = 12;

/**
 * Each migration runs in one transaction with its history row: one that fails is rolled back and recorded with
 * its error (later runs refuse until a person marks it rolled back, as Prisma's tooling does); one whose session
 * was killed leaves nothing and the next run applies it; one whose process was killed is committed whole by the
 * server (history row and all) or leaves nothing. One that waits LOCK_TIMEOUT_MS for a lock is rolled back and
 * tried again, LOCK_TRIES times in all.
 */
export async function migrate(
  db: Database,
  log: (line: string) => void = () => {},
  dir = MIGRATIONS_DIR,
): Promise<string[]> {
  const names = await migrationNames(dir);
  const applied: string[] = [];
  await db.exclusive(LOCK_KEY, async () => {
    await db.exec(HISTORY_TABLE);
    const done = await db.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
    );
    for (const name of names) {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const previous = done.find((d) => d.migration_name === name);
      if (previous?.finished_at) {
        if (previous.checksum !== checksum) log(`warning: migration ${name} was changed after it was applied`);
        continue;
      }
      if (previous)
        throw new Error(
          `migration ${name} failed earlier; fix the database and mark it rolled back before deploying again ` +
            `(UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = ${literal(name)} AND finished_at IS NULL)`,
        );
      const id = randomUUID();
      const record = `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
        VALUES (${literal(id)}, ${literal(checksum)}, ${literal(name)}, now(), 1)`;
      try {
        for (let tries = 1; ; tries++)
          try {
            // no statement timeout (the pool's, DATABASE_STATEMENT_TIMEOUT_SECONDS): a migration may rewrite a table
            const limits = `SET LOCAL lock_timeout = ${LOCK_TIMEOUT_MS};\nSET LOCAL statement_timeout = 0;`;
            await db.exec(`BEGIN;\n${limits}\n${sql}\n;\n${record};\nCOMMIT;`);
            break;
          } catch (err) {
            if ((err as { code?: unknown }).code !== LOCK_NOT_AVAILABLE || tries === LOCK_TRIES) throw err;
            await db.exec('ROLLBACK').catch(() => {});
            log(`migration ${name} waited ${LOCK_TIMEOUT_MS / 1000} s for a lock (a long transaction?): trying again`);
            await new Promise((r) => setTimeout(r, 1000));
          }
      } catch (err) {
        // PGlite's one connection is left in the failed transaction; Postgres's pool discards a failed query's
        // connection, and this ROLLBACK (on another) only warns that there is none
        await db.exec('ROLLBACK').catch(() => {});
        if (!failedItself(err)) throw new Error(`migration ${name} was interrupted: ${messageOf(err)}`, { cause: err });
        // a run whose process was killed mid-way lets the server finish its statement (and the lock go): applied
        // by it meanwhile, this one's failure ("already exists") is not the migration's
        const [finished] = await db.query(
          'SELECT 1 FROM "_prisma_migrations" WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL',
          [name],
        );
        if (finished) {
          log(`migration ${name} was applied meanwhile by another run`);
          continue;
        }
        await db.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs) VALUES ($1, $2, $3, $4)',
          [id, checksum, name, String(err)],
        );
        throw new Error(`migration ${name} failed: ${messageOf(err)}`, { cause: err });
      }
      applied.push(name);
    }
  });
  return applied;
}

const migrationNames = async (dir: string): Promise<string[]> =>
  (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();

/** The migrations of this checkout that the database has not applied (all of them on an empty database). */
export async function pendingMigrations(db: Database, dir = MIGRATIONS_DIR): Promise<string[]> {
  const [{ table }] = await db.query<{ table: string | null }>(
    `SELECT to_regclass('"_prisma_migrations"')::text AS "table"`,
  );
  const done = table
    ? await db.query<{ migration_name: string }>(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      )
    : [];
  return (await migrationNames(dir)).filter((name) => !done.some((d) => d.migration_name === name));
}
