/**
 * The owner of a request's API key, read from the database once and then kept in memory by each API instance,
 * so a page query costs no key lookup. A revocation NOTIFYs every instance (`revokeApiKey`), which drops what it
 * kept; while the LISTEN connection is down every request reads the database, and nothing is kept longer than
 * a minute (a key revoked by hand in SQL, without the NOTIFY, stops working within that).
 */
import type { Database } from '../db/database.ts';
import { CHANNELS } from '../events/topics.ts';
import { keyOwner } from './keys.ts';

const KEEP_MS = 60_000;
/** At most this many keys are kept (then all are dropped): a flood of valid keys cannot grow the map. */
const MAX_KEYS = 10_000;

export class KeyOwners {
  private readonly kept = new Map<string, { owner: string; until: number }>();
  /** Bumped by every drop: a read that began before one is not kept. */
  private epoch = 0;

  private stopListening: (() => Promise<void>) | null = null;

  constructor(private readonly db: Database) {}

  /**
   * Listens for revocations; `onRevoked` runs after a key was revoked anywhere (the API closes its sockets). Until
   * it has started (and after it stopped) nothing is kept: every request reads its key.
   */
  async start(onRevoked: () => void): Promise<void> {
    if (this.stopListening) throw new Error('KeyOwners started twice');
    const drop = () => {
      this.kept.clear();
      this.epoch++;
    };
    const unlisten = await this.db.listen(CHANNELS.keys, () => {
      drop();
      onRevoked();
    });
    const unhook = this.db.onReconnect(drop);
    this.stopListening = async () => {
      unhook();
      await unlisten();
    };
  }

  async stop(): Promise<void> {
    const stop = this.stopListening;
    this.stopListening = null;
    this.kept.clear();
    await stop?.();
  }

  /** The id of a valid, unrevoked key, or null. */
  async of(key: string): Promise<string | null> {
    const now = Date.now();
    const hit = this.kept.get(key);
    if (hit && hit.until > now && this.stopListening && this.db.listening()) return hit.owner;
    const epoch = this.epoch;
    const owner = await keyOwner(this.db.prisma, key);
    if (owner && epoch === this.epoch && this.stopListening && this.db.listening()) {
      if (this.kept.size >= MAX_KEYS) this.kept.clear();
      this.kept.set(key, { owner, until: now + KEEP_MS });
    } else this.kept.delete(key);
    return owner;
  }
}
