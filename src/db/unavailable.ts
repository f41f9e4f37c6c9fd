/**
 * Errors that say the database cannot be reached now (down, restarting, failed over, unreachable, out of connections)
 * rather than that a query failed: what a caller may send again (SERVICE_UNAVAILABLE), and reads that wait it out.
 */

import { messageOf } from '../errors.ts';
import type { Logger } from '../ops/log.ts';

/** Prisma's codes for a database it cannot reach or that dropped it (not a query's own error). */
const PRISMA_UNAVAILABLE = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** Socket errors. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/**
 * SQLSTATEs of a server going down, starting up, full, or a standby after a failover (read-only), and of a statement
 * it canceled (57014: over the pool's statement timeout, stuck behind a lock or on a server too busy); class 08, the
 * connection's, is matched by its prefix (PgBouncer reports its own outages as 08P01).
 */
const SERVER_DOWN = new Set(['57P01', '57P02', '57P03', '53300', '25006', '57014']);
/** Kinds of @prisma/adapter-pg's DriverAdapterError causes. */
const ADAPTER_UNAVAILABLE = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);
/**
 * node-postgres's and pg-pool's own messages, and Prisma's transaction that found no connection in time or ran past its
 * time limit (its statements slowed by locks or a busy server).
 */
const MESSAGES =
  /Connection terminated (unexpectedly|due to connection timeout)|timeout exceeded when trying to connect|Unable to start a transaction in the given time|cannot be executed on an expired transaction/;

/**
 * Whether `err` says the database cannot be reached now: node-postgres's errors, and Prisma's around them (its
 * codes, its driver adapter's kinds in meta.driverAdapterError or as the error itself, the server's SQLSTATE).
 */
export function isUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; depth++) {
    const { code, kind, message, meta, cause } = e as Record<string, unknown>;
    if (typeof code === 'string')
      if (PRISMA_UNAVAILABLE.has(code) || SOCKET_CODES.has(code) || SERVER_DOWN.has(code) || code.startsWith('08'))
        return true;
    if (typeof kind === 'string' && ADAPTER_UNAVAILABLE.has(kind)) return true;
    if (typeof message === 'string' && MESSAGES.test(message)) return true;
    const adapter = (meta as { driverAdapterError?: { cause?: unknown } } | undefined)?.driverAdapterError?.cause;
    e = adapter ?? cause;
  }
  return false;
}

/**
 * `read()`, tried again while the database is unavailable (1 s, then 2 and 4, then every 5 s) until it answers, or
 * until `stopped()` (null then); any other error is thrown.
 */
export async function whenReachable<T>(read: () => Promise<T>, stopped: () => boolean): Promise<T | null> {
  for (let wait = 1000; ; wait = Math.min(2 * wait, 5000)) {
    try {
      return await read();
    } catch (err) {
      if (!isUnavailable(err)) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (stopped()) return null;
  }
}

/**
 * A background task's failure (`what` failed): the database unavailable or too slow (isUnavailable) is a warning, as
 * the task runs again; anything else is an error with its stack, a bug to fix (docs/operations.md).
 */
export function logFailure(log: Logger, what: string, err: unknown): void {
  if (isUnavailable(err)) log.warn(`${what}: the database is unavailable (${messageOf(err).split('\n').at(-1)})`);
  else log.error({ err }, what);
}
