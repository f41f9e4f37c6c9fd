/**
 * The database's connections: the query pool's size and where LISTEN goes (DATABASE_POOL_SIZE, DATABASE_LISTEN_URL),
 * so a deployment can put a transaction pooler (PgBouncer) in front of the queries while LISTEN keeps its session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describeDatabase, loadConfig } from '../src/config.ts';
import { type Database, openConfiguredDatabase, openDatabase } from '../src/db/database.ts';
import { isUnavailable, whenReachable } from '../src/db/unavailable.ts';
import { migrate } from '../src/db/migrate.ts';
import { freshPostgres } from './support/db.ts';

test("the other settings' ranges are checked at start, as README says (0 is not off)", () => {
  assert.equal(loadConfig({}).retentionDays, null);
  assert.equal(loadConfig({}).quotas.imagesPerDay, null);
  assert.throws(
    () => loadConfig({ RETENTION_DAYS: '0' }),
    /^Error: RETENTION_DAYS must be an integer from 1 to 36500, got "0"$/,
  );
  assert.throws(() => loadConfig({ IMAGES_PER_DAY: '0' }), /IMAGES_PER_DAY must be an integer from 1/);
  assert.throws(
    () => loadConfig({ WORKER_LEASE_SECONDS: '2' }),
    /WORKER_LEASE_SECONDS must be an integer from 3 to 3600/,
  );
  assert.throws(() => loadConfig({ JOB_TIME_LIMIT_SECONDS: '9' }), /from 10 to 86400/);
  assert.throws(() => loadConfig({ WS_MAX_PAYLOAD_BYTES: '1023' }), /from 1024 to 104857600/);
  assert.equal(loadConfig({}).ws.pingMs, 12_000);
  assert.equal(loadConfig({ WS_PING_SECONDS: '20' }).ws.pingMs, 20_000);
  assert.throws(() => loadConfig({ WS_PING_SECONDS: '0' }), /WS_PING_SECONDS must be an integer from 1 to 3600/);
  assert.throws(
    () => loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'yes' }),
    /WEBHOOK_ALLOW_PRIVATE must be 1 or 0 \(or true or false\), got "yes"/,
  );
  assert.equal(loadConfig({ WEBHOOK_ALLOW_PRIVATE: 'true' }).webhooks.allowPrivate, true);
  assert.throws(() => loadConfig({ PUBLIC_URL: 'https://ganvas.example.com/api' }), /PUBLIC_URL must be an origin/);
  assert.equal(
    loadConfig({ PUBLIC_URL: 'https://ganvas.example.com/' }).webhooks.publicUrl,
    'https://ganvas.example.com',
  );
});

test('DATABASE_LISTEN_URL, DATABASE_POOL_SIZE and DATABASE_STATEMENT_TIMEOUT_SECONDS are read and checked', () => {
  const url = 'postgresql://u@db/ganvas';
  const c = loadConfig({
    DATABASE_URL: url,
    DATABASE_LISTEN_URL: 'postgres://u@db-direct/ganvas',
    DATABASE_POOL_SIZE: '4',
  });
  assert.equal(c.databaseListenUrl, 'postgres://u@db-direct/ganvas');
  assert.equal(c.databasePoolSize, 4);
  assert.equal(loadConfig({ DATABASE_URL: url }).databaseListenUrl, null);
  assert.equal(loadConfig({ DATABASE_URL: url }).databasePoolSize, 10);
  assert.equal(loadConfig({ DATABASE_URL: url }).databaseStatementTimeoutSeconds, 30);
  assert.equal(loadConfig({ DATABASE_STATEMENT_TIMEOUT_SECONDS: '0' }).databaseStatementTimeoutSeconds, 0);
  assert.throws(() => loadConfig({ DATABASE_STATEMENT_TIMEOUT_SECONDS: '-1' }), /DATABASE_STATEMENT_TIMEOUT_SECONDS/);
  assert.throws(
    () => loadConfig({ DATABASE_URL: url, DATABASE_LISTEN_URL: 'mysql://x' }),
    /DATABASE_LISTEN_URL must be/,
  );
  // a URL of another form is not repeated past its scheme: the rest may hold the password
  assert.throws(
    () => loadConfig({ DATABASE_URL: 'jdbc:postgresql://u:hunter2@db/ganvas' }),
    (err: Error) =>
      /DATABASE_URL must be a postgres:\/\/ URL; it starts "jdbc/.test(err.message) && !/hunter2/.test(err.message),
  );
  // webhook settings under which no message could be sent again are refused at start
  assert.throws(
    () => loadConfig({ WEBHOOK_BACKOFF_SECONDS: '60', WEBHOOK_RETRY_FOR_SECONDS: '60' }),
    /WEBHOOK_BACKOFF_SECONDS \(60\) must be less than WEBHOOK_RETRY_FOR_SECONDS \(60\)/,
  );
  assert.throws(() => loadConfig({ DATABASE_LISTEN_URL: url }), /needs DATABASE_URL/);
  assert.throws(() => loadConfig({ DATABASE_URL: url, DATABASE_POOL_SIZE: '0' }), /DATABASE_POOL_SIZE/);
  // what a process says it uses: server and database, never the password; forms URL cannot read are still named
  const named = (databaseUrl: string) => describeDatabase({ databaseUrl, dataDir: '/d' });
  assert.equal(named('postgresql://u:secret@db:5432/ganvas'), 'postgres at db:5432/ganvas (DATABASE_URL)');
  assert.equal(named('postgres://u@h1:5432,h2:5432/ganvas'), 'postgres (DATABASE_URL)');
  assert.equal(named('postgres://u:p#ss@/ganvas?host=/var/run/postgresql'), 'postgres (DATABASE_URL)');
  assert.equal(describeDatabase({ databaseUrl: null, dataDir: '/d' }), 'embedded PGlite in /d');
});

test('what counts as the database unavailable (send again): unreachable, restarting, full; not a query of its own', () => {
  const prisma = (code: string, cause?: object) => ({ code, meta: cause && { driverAdapterError: { cause } } });
  for (const err of [
    prisma('P1001', { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }),
    prisma('P2010', { kind: 'postgres', code: '57P01' }), // terminating connection due to administrator command
    prisma('P2010', { kind: 'postgres', code: '57P03' }), // the database system is starting up
    prisma('P2010', { kind: 'TooManyConnections' }),
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('terminating connection'), { code: '57P01' }),
    new Error('Connection terminated unexpectedly'),
    { message: 'wrapped', cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) },
    { name: 'DriverAdapterError', cause: { kind: 'ConnectionClosed' } }, // a failed COMMIT, unmapped by Prisma
    prisma('P2010', { kind: 'postgres', code: '25006' }), // a standby after a failover: read-only
    prisma('P2010', { kind: 'postgres', code: '57014' }), // canceled: over the statement timeout
    new Error('timeout exceeded when trying to connect'), // pg-pool: no connection within its timeout
    // Prisma: an interactive transaction past its time limit
    prisma('P2028', { message: 'A query cannot be executed on an expired transaction. The timeout for this ...' }),
    new Error('Transaction API error: A query cannot be executed on an expired transaction. The timeout was 5000 ms'),
  ])
    assert.ok(isUnavailable(err), JSON.stringify(err));
  for (const err of [
    prisma('P2002'),
    prisma('P2010', { kind: 'postgres', code: '23505' }),
    prisma('P2010', { kind: 'UniqueConstraintViolation' }),
    Object.assign(new Error('syntax error'), { code: '42601' }),
    new Error('internal'),
    null,
    'P1001',
  ])
    assert.ok(!isUnavailable(err), JSON.stringify(err));
});

test('a read waits out the database unavailable and goes on; any other error, or a stop, ends it', async () => {
  const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  let calls = 0;
  const flaky = async () => {
    if (++calls < 3) throw down;
    return 'state';
  };
  assert.equal(await whenReachable(flaky, () => false), 'state');
  assert.equal(calls, 3);
  await assert.rejects(
    whenReachable(
      async () => {
        throw new Error('a bug');
      },
      () => false,
    ),
    /a bug/,
  );
  let stopped = false;
  const waiting = whenReachable(
    async () => {
      throw down;
    },
    () => stopped,
  );
  stopped = true;
  assert.equal(await waiting, null);
});

test('LISTEN goes to its own URL; queries use a pool of the given size', { timeout: 60_000 }, async () => {
  const pgdb = await freshPostgres(__filename);
  const tag = `ganvas-listen-${process.pid}`;
  const listenUrl = `${pgdb.url}${pgdb.url.includes('?') ? '&' : '?'}application_name=${tag}`;
  const db = await openDatabase({ url: pgdb.url, listenUrl, poolSize: 2 });
  try {
    const heard: string[] = [];
    await db.listen('ganvas_test', (p) => heard.push(p));
    const rows = await db.query<{ query: string }>('SELECT query FROM pg_stat_activity WHERE application_name = $1', [
      tag,
    ]);
    assert.equal(rows.length, 1);
    assert.match(rows[0].query, /^LISTEN/);
    await db.query(`SELECT pg_notify('ganvas_test', 'hello')`);
    for (let i = 0; i < 500 && heard.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(heard, ['hello']);
    // at most 2 query connections however many queries wait (a pool of 10 would have opened 4)
    const sleepers = Array.from({ length: 4 }, () => db.query('SELECT pg_sleep(0.3)'));
    await Promise.all(sleepers);
    const active = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name <> $1`,
      [tag],
    );
    assert.ok(active[0].n <= 2, `${active[0].n} query connections`);
    // migrations hold their lock on a session of their own, not one of the pool's (a pool of 1 waited forever)
    const one = await openDatabase({ url: pgdb.url, listenUrl, poolSize: 1 });
    try {
      await migrate(one);
    } finally {
      await one.close();
    }
  } finally {
    await db.close();
    await pgdb.drop();
  }
});

test('a prepared read is parsed once per connection of the pool, under one name for its text', async () => {
  const pgdb = await freshPostgres(`${__filename}-prepared`);
  const db = await openDatabase({ url: pgdb.url, poolSize: 1 });
  try {
    const sql = 'SELECT $1::int + 1 AS n';
    for (const v of [1, 2]) assert.deepEqual(await db.query(sql, [v], { prepared: true }), [{ n: v + 1 }]);
    assert.deepEqual(await db.query('SELECT $1::int + 2 AS n', [1]), [{ n: 3 }]);
    // the pool's one connection holds the prepared text once (the other was not prepared), and ran it twice
    const held = await db.query<{ statement: string; runs: number }>(
      'SELECT statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements',
    );
    assert.deepEqual(held, [{ statement: sql, runs: 2 }]);
  } finally {
    await db.close();
    await pgdb.drop();
  }
});

/**
 * `body` on a fresh database opened with DATABASE_STATEMENT_TIMEOUT_SECONDS `statementTimeoutSeconds`, beside another
 * session of it (`holder`) to hold locks with; both closed and the database dropped after.
 */
async function withLockHolder(
  name: string,
  statementTimeoutSeconds: number,
  body: (db: Database, holder: pg.Client) => Promise<void>,
): Promise<void> {
  const pgdb = await freshPostgres(`${__filename}-${name}`);
  const db = await openConfiguredDatabase(
    loadConfig({ DATABASE_URL: pgdb.url, DATABASE_STATEMENT_TIMEOUT_SECONDS: String(statementTimeoutSeconds) }),
  );
  const holder = new pg.Client({ connectionString: pgdb.url });
  await holder.connect();
  try {
    await body(db, holder);
  } finally {
    await holder.end();
    await db.close();
    await pgdb.drop();
  }
}

test(
  'a query stuck behind a lock fails at DATABASE_STATEMENT_TIMEOUT_SECONDS as the database unavailable; a migration runs past it',
  { timeout: 60_000 },
  () =>
    withLockHolder('timeout', 1, async (db, holder) => {
      const dir = await mkdtemp(join(tmpdir(), 'ganvas-migrations-'));
      await mkdir(join(dir, '001_slow'));
      await writeFile(join(dir, '001_slow', 'migration.sql'), 'CREATE TABLE "held" (id int);\nSELECT pg_sleep(1.5);');
      assert.deepEqual(await migrate(db, () => {}, dir), ['001_slow']);
      // another session holds the table (a long migration of another release, a stray transaction): without the
      // timeout each of these would wait for as long as it does
      await holder.query('BEGIN; LOCK TABLE "held" IN ACCESS EXCLUSIVE MODE');
      for (const read of [
        () => db.query('SELECT count(*) FROM "held"'),
        () => db.prisma.$queryRaw`SELECT count(*) FROM "held"`,
      ]) {
        const err = await read().then(
          () => null,
          (e: unknown) => e,
        );
        assert.ok(err && isUnavailable(err), `refused as unavailable: ${String(err)}`);
      }
      await holder.query('ROLLBACK');
      assert.deepEqual(await db.query('SELECT count(*)::int AS n FROM "held"'), [{ n: 0 }]);
    }),
);

test(
  "a transaction that waits on a lock for longer than Prisma's default 5 s goes on, up to the statement timeout",
  { timeout: 60_000 },
  () =>
    withLockHolder('transaction', 10, async (db, holder) => {
      await db.query('CREATE TABLE "held" (id int PRIMARY KEY, n int); INSERT INTO "held" VALUES (1, 0)');
      await holder.query('BEGIN; SELECT * FROM "held" WHERE id = 1 FOR UPDATE');
      const letGo = setTimeout(() => void holder.query('ROLLBACK').catch(() => {}), 6000); // a stray transaction
      const started = Date.now();
      // as a delete or a key's revocation does: lock and change the row, then read in the same transaction
      const n = await db.prisma.$transaction(async (tx) => {
        await tx.$executeRaw`UPDATE "held" SET n = n + 1 WHERE id = 1`;
        return (await tx.$queryRaw<{ n: number }[]>`SELECT n FROM "held" WHERE id = 1`)[0].n;
      });
      assert.equal(n, 1);
      clearTimeout(letGo); // (after a failure above it fires on the ended holder, and its error is caught)
      assert.ok(Date.now() - started >= 5500, 'it waited for the lock');
    }),
);

/**
 * A fresh database with a LISTEN URL whose connections carry an application_name, and a connection of its own that
 * counts them (`listeners`) and ends them (`lose`): a LISTEN connection lost as a Postgres restart loses it.
 */
async function losable(name: string) {
  const pgdb = await freshPostgres(`${__filename}-${name}`);
  const tag = `ganvas-${name}-${process.pid}`;
  const watcher = new pg.Client({ connectionString: pgdb.url });
  await watcher.connect();
  const ofTag = async (sql: string) =>
    (await watcher.query(`${sql} FROM pg_stat_activity WHERE application_name = $1`, [tag])).rows;
  const db = await openDatabase({
    url: pgdb.url,
    listenUrl: `${pgdb.url}${pgdb.url.includes('?') ? '&' : '?'}application_name=${tag}`,
    poolSize: 1,
  });
  await db.listen('ganvas_test', () => {});
  let closed = false;
  const close = async () => {
    if (!closed) await db.close();
    closed = true;
  };
  return {
    db,
    close,
    listeners: async () => (await ofTag('SELECT count(*)::int AS n'))[0].n as number,
    /** Ends the LISTEN connection and waits until the database says it is not listening. */
    lose: async () => {
      await ofTag('SELECT pg_terminate_backend(pid)');
      for (let i = 0; i < 100 && db.listening(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(db.listening(), false);
    },
    end: async () => {
      await close();
      await watcher.end();
      await pgdb.drop();
    },
  };
}

test(
  'a LISTEN connection lost and made again runs the reconnect hooks once, with listening() true again',
  { timeout: 60_000 },
  async () => {
    const { db, lose, end } = await losable('hooks');
    try {
      const seen: boolean[] = [];
      db.onReconnect(() => seen.push(db.listening()));
      await lose();
      for (let i = 0; i < 500 && !seen.length; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 600)); // a second call would be due by now
      assert.deepEqual(seen, [true]);
    } finally {
      await end();
    }
  },
);

test(
  'a LISTEN connection lost just before close is not made again after it (it kept the process alive)',
  { timeout: 60_000 },
  async () => {
    const { close, listeners, lose, end } = await losable('reconnect');
    try {
      assert.equal(await listeners(), 1);
      await lose();
      await close(); // the reconnect is due 500 ms after the loss
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await listeners(), 0);
    } finally {
      await end();
    }
  },
);

test("dates stay UTC through Prisma where the server's TimeZone is another (it moved them by the offset)", async () => {
  const pgdb = await freshPostgres(`${__filename}-tz`);
  const admin = await openDatabase({ url: pgdb.url });
  await admin.exec(`ALTER DATABASE "${new URL(pgdb.url).pathname.slice(1)}" SET timezone TO 'America/New_York'`);
  await admin.close();
  const db = await openDatabase({ url: pgdb.url });
  try {
    await migrate(db, () => {});
    const [{ now }] = await db.prisma.$queryRaw<{ now: Date }[]>`SELECT now() AS "now"`;
    assert.ok(Math.abs(now.getTime() - Date.now()) < 60_000, `now() read as ${now.toISOString()}`);
    const when = new Date('2026-06-01T12:00:00.000Z');
    const [{ same }] = await db.prisma.$queryRaw<{ same: boolean }[]>`
      SELECT ${when}::timestamptz = '2026-06-01T12:00:00Z'::timestamptz AS "same"`;
    assert.equal(same, true, 'a Date passed to Postgres is the same instant');
  } finally {
    await db.close();
    await pgdb.drop();
  }
});
