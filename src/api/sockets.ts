/**
 * Open graphql-ws sockets by API key: at most `perKey` at once, and a way to close every socket of a key
 * that is no longer valid (revoked), which the server runs every few seconds.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * Close code for "no valid API key": sent at connection_init without one and when a key is revoked. graphql-ws's
 * client takes 4401 (Unauthorized) as final and does not retry, where its own refusal, 4403, is retried for half a
 * minute.
 */
export const CLOSE_UNAUTHENTICATED = 4401;
/** Close code for "this key holds as many sockets as it may": graphql-ws's Forbidden, which its client retries. */
export const CLOSE_TOO_MANY_SOCKETS = 4403;
/** Close code for "the server could not check the key now" (WebSocket's Try Again Later, which clients retry). */
export const CLOSE_TRY_AGAIN = 1013;

export class SocketsByKey {
  private readonly byKey = new Map<string, Set<WebSocket>>();

  constructor(private readonly perKey: number) {}

  /** Registers a socket until it closes; false when its key already holds the most it may. */
  add(key: string, socket: WebSocket): boolean {
    const set = this.byKey.get(key) ?? new Set();
    if (set.size >= this.perKey) return false;
    set.add(socket);
    this.byKey.set(key, set);
    socket.once('close', () => this.remove(key, socket));
    return true;
  }

  private remove(key: string, socket: WebSocket): void {
    const set = this.byKey.get(key);
    set?.delete(socket);
    if (set?.size === 0) this.byKey.delete(key);
  }

  private sweeping: Promise<void> | null = null;
  private sweepAgain = false;

  /**
   * Closes the sockets of every key that `valid` (the valid ones of the keys it is given, one read for all) leaves
   * out. One sweep at a time: one asked for meanwhile (a revocation's NOTIFY, the next tick) runs once after it,
   * so slow reads never pile up on the database.
   */
  closeRevoked(valid: (keys: string[]) => Promise<Set<string>>): Promise<void> {
    if (this.sweeping) {
      this.sweepAgain = true;
      return this.sweeping;
    }
    this.sweeping = (async () => {
      await null; // `sweeping` is set before any of this runs
      try {
        do {
          this.sweepAgain = false;
          const keys = [...this.byKey.keys()];
          if (keys.length === 0) continue;
          const ok = await valid(keys).catch(() => new Set(keys)); // a database hiccup revokes nothing
          for (const key of keys) {
            if (ok.has(key)) continue;
            for (const socket of this.byKey.get(key) ?? [])
              socket.close(CLOSE_UNAUTHENTICATED, 'UNAUTHENTICATED: the API key was revoked');
            this.byKey.delete(key);
          }
        } while (this.sweepAgain);
      } finally {
        this.sweeping = null; // at once, not a tick later: a sweep asked for after the last check starts its own
      }
    })();
    return this.sweeping;
  }
}

const corked = new WeakSet<Socket>();

/**
 * Holds a connection's writes until this tick's work is done, then sends them in one write: one event to the
 * many subscriptions of one connection leaves in one system call, not one a subscription.
 */
export function coalesceWrites(socket: Socket): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}
