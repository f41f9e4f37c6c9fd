/**
 * The database behind ganvas: a Prisma client plus LISTEN/NOTIFY, over a Postgres server (DATABASE_URL)
 * or embedded PGlite (one process; data kept in a folder). Everything above this file is the same on both.
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from './generated/client.ts';
import type { Config } from '../config.ts';

/** Where the database reports its connections coming and going (a pino logger fits). */
export interface DatabaseLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface Database {
  kind: 'postgres' | 'pglite';
  prisma: PrismaClient;
  /** Runs SQL with several statements (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * `prepared`: the statement is kept prepared on each connection of the pool and planned once there, not on every
   * call (for the hot reads, whose text is one of a few fixed ones, values all in `params`). Postgres then spent
   * 0.16 ms of CPU on a page's two reads, against 0.24-0.29 (docs/benchmarks.md, session 37). PGlite ignores it.
   */
  query<T>(sql: string, params?: unknown[], opts?: { prepared?: boolean }): Promise<T[]>;
  /** Calls `onMessage` with each payload sent on `channel`, from any process; returns an unsubscribe. */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  /** Called each time the LISTEN connection is back after it was lost (notifications in between are gone). */
  onReconnect(fn: () => void): () => void;
  /** Whether the LISTEN connection is up (false while it reconnects). */
  listening(): boolean;
  /** Runs `fn` holding a Postgres advisory lock (other processes wait); PGlite has one process. */
  exclusive<T>(key: number, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The database a process's configuration names (DATABASE_URL, _LISTEN_URL, _POOL_SIZE, _STATEMENT_TIMEOUT_SECONDS,
 * GANVAS_DATA_DIR).
 */
export const openConfiguredDatabase = (
  config: Pick<
    Config,
    'databaseUrl' | 'databaseListenUrl' | 'databasePoolSize' | 'databaseStatementTimeoutSeconds' | 'dataDir'
  >,
  log?: DatabaseLog,
): Promise<Database> =>
  openDatabase({
    url: config.databaseUrl,
    listenUrl: config.databaseListenUrl,
    poolSize: config.databasePoolSize,
    statementTimeoutMs: config.databaseStatementTimeoutSeconds * 1000,
    dataDir: config.dataDir,
    log,
  });

export async function openDatabase(opts: {
  url: string | null;
  /** Where the LISTEN connection goes (it needs a session: the server itself where `url` is a transaction pooler). */
  listenUrl?: string | null;
  /** Connections of the query pool (the LISTEN connection is one more). */
  poolSize?: number;
  /**
   * Longest a query of the pool runs or waits for a lock before the server cancels it (SQLSTATE 57014, which
   * isUnavailable counts as the database unavailable); 0 or unset: no limit. Not the migrations' (they lift it), nor
   * the LISTEN or advisory-lock sessions.
   */
  statementTimeoutMs?: number;
  dataDir?: string;
  log?: DatabaseLog;
}): Promise<Database> {
  return opts.url
    ? openPostgres(opts.url, opts.listenUrl ?? opts.url, opts.poolSize ?? 10, opts.statementTimeoutMs ?? 0, opts.log)
    : openPglite(opts.dataDir ?? '.data/pglite');
}

/** Longest a query or a transaction waits for a connection of the pool: then it fails as the database unavailable. */
const CONNECTION_WAIT_MS = 10_000;

/**
 * A prepared statement's name: a hash of its text, so that one text has one name on every connection (pg parses a
 * name's text once per connection). One entry per distinct prepared text: a few, fixed by the code.
 */
const statementNames = new Map<string, string>();
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (!name) statementNames.set(sql, (name = `ganvas_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`));
  return name;
}

async function openPostgres(
  url: string,
  listenUrl: string,
  poolSize: number,
  statementTimeoutMs: number,
  log?: DatabaseLog,
): Promise<Database> {
  const timeout = statementTimeoutMs > 0 ? `; SET statement_timeout = ${Math.round(statementTimeoutMs)}` : '';
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // a query waits at most this long for a connection (the server unreachable, or every one busy): then it fails,
    // SERVICE_UNAVAILABLE to the caller, instead of waiting for ever. Keepalive: a connection waiting for the answer
    // of a server that went silently (a failover, a NAT) errors in minutes, as the LISTEN connection does, instead
    // of after the system's default delay (2 hours on Linux); idle ones the pool closes after 10 s anyway
    connectionTimeoutMillis: CONNECTION_WAIT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // Prisma's adapter writes dates without a zone and reads timestamptz as if it were UTC: in a session of another
    // TimeZone (the server's default) every date it passes or reads moved by the offset. Set before the pool hands
    // a new connection out; PgBouncer keeps it per client (TimeZone is one of the parameters it tracks). The statement
    // timeout is set with it: a query stuck behind a lock (a long migration, a stray transaction) fails, and its
    // request is answered SERVICE_UNAVAILABLE, instead of hanging for as long as the lock is held.
    onConnect: async (client: pg.ClientBase) => {
      await client.query(`SET TIME ZONE 'UTC'${timeout}`);
    },
  });
  pool.on('error', (err) => log?.warn(`postgres pool: ${err.message}`)); // an idle client lost; the pool replaces it
  const prisma = new PrismaClient({
    adapter: new PrismaPg(pool),
    // an interactive transaction ($transaction(async (tx) => ...)) waits for a connection as long as a query does, and
    // may last as long as a statement of it may wait for a lock, and then some: Prisma's own limits (2 s and 5 s)
    // ended one that waited on a lock at 5 s with an error that read as a bug (INTERNAL_SERVER_ERROR), and rolled it
    // back; a statement over the timeout fails first (57014), and a transaction over its limit reads as unavailable
    transactionOptions: {
      maxWait: CONNECTION_WAIT_MS,
      timeout: statementTimeoutMs > 0 ? statementTimeoutMs + 5_000 : 10 * 60_000,
    },
  });
  const listeners = new Map<string, Set<(p: string) => void>>();
  const reconnectHooks = new Set<() => void>();
  let client: pg.Client | null = null;
  /** The connection was lost: the next one made runs the reconnect hooks. */
  let lost = false;
  let connecting: Promise<void> | null = null;
  let closed = false;

  /** One connection LISTENs on every channel; it reconnects (with its channels) after a server restart. */
  const connect = async (): Promise<void> => {
    // TCP keepalive: a connection a NAT or a failover dropped without a word errors (and reconnects) in minutes,
    // instead of leaving this process listening to nothing while readiness says it listens
    const c = new pg.Client({
      connectionString: listenUrl,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 10_000, // an unreachable server fails the attempt (and retries), not hangs it
    });
    c.on('notification', (n) => listeners.get(n.channel)?.forEach((f) => f(n.payload ?? '')));
    c.on('error', (err) => {
      c.end().catch(() => {});
      // one lost while it connected is retried by reconnect's own loop (connect rejects), not twice
      if (client !== c) return;
      client = null;
      lost = true;
      log?.warn(`LISTEN connection lost (${err.message}): reconnecting`);
      if (!closed) setTimeout(() => void reconnect(), 500);
    });
    try {
      await c.connect();
      for (const ch of listeners.keys()) await c.query(`LISTEN "${ch}"`);
    } catch (err) {
      await c.end().catch(() => {}); // a connection whose LISTEN failed is not left open
      throw err;
    }
    // closed meanwhile (a reconnect's timer fired late): this connection would keep the process alive
    if (closed) return void (await c.end().catch(() => {}));
    client = c;
    // in the same turn, before anything reads listening() as true again: what was kept from before the loss goes first
    if (lost) {
      lost = false;
      reconnectHooks.forEach((f) => f());
      log?.info('LISTEN connection back');
    }
  };
  /**
   * One connection at a time: concurrent callers wait for the same one, and a reconnect that finds one already
   * made (a listen() during its delay made it) leaves it.
   */
  const connectOnce = async () => {
    if (!client) await (connecting ??= connect().finally(() => (connecting = null)));
  };
  const reconnect = async (): Promise<void> => {
    if (closed) return;
    try {
      await connectOnce();
    } catch {
      if (!closed) setTimeout(() => void reconnect(), 1000);
    }
  };

  return {
    kind: 'postgres',
    prisma,
    exec: async (sql) => void (await pool.query(sql)),
    query: async <T>(sql: string, params: unknown[] = [], opts?: { prepared?: boolean }) =>
      (
        await pool.query(
          opts?.prepared ? { name: statementName(sql), text: sql, values: params } : { text: sql, values: params },
        )
      ).rows as T[],
    listen: async (channel, onMessage) => {
      if (closed) throw new Error('the database connection is closed');
      // concurrent first calls share one connection (two would each deliver every notification)
      await connectOnce();
      if (!listeners.has(channel)) {
        listeners.set(channel, new Set());
        await client?.query(`LISTEN "${channel}"`);
      }
      listeners.get(channel)!.add(onMessage);
      return async () => void listeners.get(channel)?.delete(onMessage);
    },
    onReconnect: (fn) => {
      reconnectHooks.add(fn);
      return () => void reconnectHooks.delete(fn);
    },
    listening: () => client !== null,
    // the lock is a session's: held on a connection of its own, to the server LISTEN uses (a transaction pooler in
    // front of the queries could move it between sessions), and not taken from the pool `fn` needs
    exclusive: async (key, fn) => {
      const c = new pg.Client({ connectionString: listenUrl });
      await c.connect();
      try {
        await c.query('SELECT pg_advisory_lock($1)', [key]);
        return await fn();
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => {});
        await c.end().catch(() => {});
      }
    },
    close: async () => {
      closed = true;
      await prisma.$disconnect();
      const listening = client;
      client = null;
      await listening?.end().catch(() => {});
      await connecting?.catch(() => {}); // a connect in flight ends its own connection (closed)
      await pool.end();
    },
  };
}

/** The pid a lock file names, or null (no file, or not a pid). */
function lockPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether another process with this pid runs (this process's own pid: no, see `held`). */
function alive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock files this process holds: one naming its pid that is not here was left by an earlier process. */
const held = new Set<string>();

const openElsewhere = (dataDir: string, path: string, pid: number | null) =>
  new Error(
    `the embedded database ${dataDir} is open in process ${pid} (npm start?): PGlite serves one process, so stop ` +
      `that one first, or give both DATABASE_URL (a Postgres server); if process ${pid} is not ganvas, delete ${path}`,
  );

/**
 * PGlite takes no lock across processes, and two processes writing one folder leave it unreadable: the first to
 * open a folder holds `<folder>.lock`, which names its pid, until it closes; another process is refused while that
 * pid runs. The file is complete before it is the lock (written aside, then hard-linked: link fails if one
 * exists), a lock whose process is gone is taken over (moved aside, and put back if it turns out to be a new one),
 * and a release removes only its own lock. Returns the release.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = `${dataDir}.lock`;
  if (held.has(path)) throw new Error(`the embedded database ${dataDir} is already open in this process`);
  mkdirSync(dirname(path), { recursive: true });
  const mine = `${path}.${process.pid}`;
  writeFileSync(mine, String(process.pid));
  try {
    for (;;) {
      try {
        linkSync(mine, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = lockPid(path);
      if (holder !== null && alive(holder)) throw openElsewhere(dataDir, path, holder);
      const aside = `${path}.stale.${process.pid}`;
      try {
        renameSync(path, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
        throw err;
      }
      const moved = lockPid(aside);
      if (moved !== holder && moved !== null && alive(moved)) {
        // another process took it over between the read and the move: its lock goes back
        try {
          linkSync(aside, path);
        } finally {
          rmSync(aside, { force: true });
        }
        throw openElsewhere(dataDir, path, moved);
      }
      rmSync(aside, { force: true });
    }
  } finally {
    rmSync(mine, { force: true });
  }
  held.add(path);
  return () => {
    held.delete(path);
    if (lockPid(path) === process.pid) rmSync(path, { force: true });
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  const release = dataDir === 'memory://' ? () => {} : lockDataDir(dataDir);
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir === 'memory://' ? undefined : dataDir);
  } catch (err) {
    release();
    throw err;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  return {
    kind: 'pglite',
    prisma,
    exec: async (sql) => void (await db.exec(sql)),
    query: async <T>(sql: string, params: unknown[] = []) => (await db.query<T>(sql, params)).rows,
    listen: async (channel, onMessage) => db.listen(channel, onMessage),
    onReconnect: () => () => {}, // in-process: the connection is never lost
    listening: () => true,
    exclusive: (_key, fn) => fn(),
    close: async () => {
      await prisma.$disconnect();
      await db.close();
      release();
    },
  };
}
