/**
 * Pages of generations an API instance answered lately, kept per owner and answered again until that owner's next
 * change: an app that reads its gallery again (a poll, a reload) costs no database read while nothing of its changed.
 *
 * An owner's pages are dropped when the database says a generation of theirs was made, changed or deleted (the
 * owner_changes migration's triggers NOTIFY CHANNELS.owners, whichever process or hand wrote it), when this instance
 * wrote one (before its answer goes out, so a client reads its own writes without waiting for the NOTIFY), and, for
 * every owner, when the LISTEN connection comes back (what was said meanwhile is lost). While it is down nothing is
 * answered from here. A read under way when its owner's pages were dropped is not kept (it may have read the row
 * before the change). Nothing is kept longer than `maxAgeMs`, nor more than `pages` pages of `rows` rows in all.
 */
import type { Owner } from './service.ts';

/** Every owner: what a TRUNCATE, or a lost LISTEN connection, changed. */
export const EVERY_OWNER = Symbol('every owner');

export interface OwnerPagesLimits {
  /** Pages kept at most (the least recently answered go first). */
  pages: number;
  /** Rows (generations and images) of all kept pages at most. */
  rows: number;
  /** How long a page is answered again at most without reading it anew. */
  maxAgeMs: number;
}

/** About 30 MB at most (an image's row as the API keeps it: about 500 bytes). */
export const DEFAULT_OWNER_PAGES: OwnerPagesLimits = { pages: 1000, rows: 60_000, maxAgeMs: 60_000 };

export interface OwnerPagesOptions<T> {
  /** Whether changes are heard now (the LISTEN connection is up). */
  hearing: () => boolean;
  /** How many rows a page holds (its generations and their images). */
  rowsOf: (page: T) => number;
  limits?: OwnerPagesLimits;
  /** Told of each page answered: `kept` (from here) or `read` (from the database). */
  answered?: (from: 'kept' | 'read') => void;
}

interface Kept<T> {
  owner: string;
  value: T;
  rows: number;
  at: number;
}

/** One read under way; `stale` once its owner changed meanwhile. */
interface Reading {
  stale: boolean;
}

const ownerKey = (owner: Owner): string => owner ?? '';

export class OwnerPages<T> {
  /** By owner and page key, the least recently answered first (a Map keeps insertion order). */
  private readonly kept = new Map<string, Kept<T>>();
  private readonly keysOf = new Map<string, Set<string>>();
  private readonly reading = new Map<string, Set<Reading>>();
  private rows = 0;
  private readonly limits: OwnerPagesLimits;

  constructor(private readonly options: OwnerPagesOptions<T>) {
    this.limits = options.limits ?? DEFAULT_OWNER_PAGES;
  }

  /** The owner's page `key`: as answered lately, if nothing of the owner's changed since, else `load`ed. */
  async read(owner: Owner, key: string, load: () => Promise<T>): Promise<T> {
    const o = ownerKey(owner);
    const k = `${o}\u0000${key}`;
    const hit = this.options.hearing() ? this.kept.get(k) : undefined;
    if (hit && Date.now() - hit.at <= this.limits.maxAgeMs) {
      this.kept.delete(k); // to the end: answered most recently
      this.kept.set(k, hit);
      this.options.answered?.('kept');
      return hit.value;
    }
    this.options.answered?.('read');
    const r: Reading = { stale: false };
    const reads = this.reading.get(o) ?? new Set();
    this.reading.set(o, reads.add(r));
    try {
      const value = await load();
      if (!r.stale && this.options.hearing()) this.keep(o, k, value);
      return value;
    } finally {
      reads.delete(r);
      if (reads.size === 0 && this.reading.get(o) === reads) this.reading.delete(o);
    }
  }

  /** Something of `owner`'s changed: their pages are read anew, and reads under way are not kept. */
  changed(owner: Owner | typeof EVERY_OWNER): void {
    const owners = owner === EVERY_OWNER ? new Set([...this.keysOf.keys(), ...this.reading.keys()]) : [ownerKey(owner)];
    for (const o of owners) {
      for (const r of this.reading.get(o) ?? []) r.stale = true;
      for (const k of this.keysOf.get(o) ?? []) this.drop(k);
    }
  }

  private keep(o: string, k: string, value: T): void {
    this.drop(k);
    const rows = this.options.rowsOf(value);
    if (rows > this.limits.rows) return;
    this.kept.set(k, { owner: o, value, rows, at: Date.now() });
    this.keysOf.set(o, (this.keysOf.get(o) ?? new Set()).add(k));
    this.rows += rows;
    for (const oldest of this.kept.keys()) {
      if (this.kept.size <= this.limits.pages && this.rows <= this.limits.rows) break;
      this.drop(oldest);
    }
  }

  private drop(k: string): void {
    const page = this.kept.get(k);
    if (!page) return;
    this.kept.delete(k);
    this.rows -= page.rows;
    const keys = this.keysOf.get(page.owner)!;
    keys.delete(k);
    if (keys.size === 0) this.keysOf.delete(page.owner);
  }
}
