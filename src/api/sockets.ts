/**
 * Open graphql-ws sockets by API key: at most `perKey` at once, and a way to close every socket of a key
 * that is no longer valid (revoked), which the server runs every few seconds.
 */
import type { WebSocket } from 'ws';

/** Close code for "your key is no longer valid" (graphql-ws uses 44xx for its own refusals). */
export const CLOSE_REVOKED = 4401;

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

  /** Closes the sockets of every key `valid` says no to. */
  async closeRevoked(valid: (key: string) => Promise<boolean>): Promise<void> {
    for (const [key, set] of [...this.byKey]) {
      if (await valid(key).catch(() => true)) continue; // a database hiccup revokes nothing
      for (const socket of set) socket.close(CLOSE_REVOKED, 'API key revoked');
      this.byKey.delete(key);
    }
  }
}
