/**
 * Pages of generations an API instance answered lately, kept per owner and answered again until that owner's next
 * change: an app that reads its gallery again (a poll, a reload) costs no database read while none of it changed.
 *
 * An owner's pages are dropped when the database says a generation of theirs, or an image of one, was made, changed
 * or deleted (the owner_changes migration's triggers NOTIFY CHANNELS.owners, whichever process or hand wrote it), when
 * this instance wrote one (before its answer goes out, so a client reads its own writes without waiting for the
 * NOTIFY), and, for every owner, when the LISTEN connection comes back (what was said meanwhile is lost). While it is
 * down nothing is answered from here. A read under way when its owner's pages were dropped is not kept (it may have
 * read the row before the change); requests for a page being read share that read, unless their owner changed since
 * it began. Nothing is kept longer than `maxAgeMs`; an owner keeps at most `pagesPerOwner` pages and `bytesPerOwner`
 * (one key asking for many pages pushes out its own, not other keys'), all owners together `bytes` (each page counted
 * by `sizeOf` and its key).
 */
import type { Owner } from './service.ts';

/** Every owner: what a TRUNCATE, or a lost LISTEN connection, changed. */
export const EVERY_OWNER = Symbol('every owner');

export interface OwnerPagesLimits {
  pagesPerOwner: number;
  /** Of one owner's pages, by `sizeOf`. */
  bytesPerOwner: number;
  /** Of every owner's pages (the least recently answered go first). */
  bytes: number;
  /** How long a page is answered again at most without reading it anew. */
  maxAgeMs: number;
}

const DEFAULT_OWNER_PAGES: OwnerPagesLimits = {
  pagesPerOwner: 50,
  bytesPerOwner: 4 * 1024 * 1024,
  bytes: 64 * 1024 * 1024,
  maxAgeMs: 60_000,
};

export interface OwnerPagesOptions<T> {
  /** Whether changes are heard now (the LISTEN connection is up). */
  hearing: () => boolean;
  /** About how many bytes of memory a page holds. */
  sizeOf: (page: T) => number;
  limits?: OwnerPagesLimits;
  /** Told of each page answered: `kept` (from here) or `read` (from the database, or a read of it under way). */
  answered?: (from: 'kept' | 'read') => void;
}

interface Kept<T> {
  owner: string;
  value: T;
  bytes: number;
  at: number;
}

/** One owner's pages (their keys, the least recently answered first) and bytes. */
interface Held {
  keys: Set<string>;
  bytes: number;
}

/** One read under way; `stale` once its owner changed meanwhile (or begun while changes were not heard). */
interface Reading<T> {
  owner: string;
  stale: boolean;
  value: Promise<T>;
}

const ownerKey = (owner: Owner): string => owner ?? '';

export class OwnerPages<T> {
  /** By page key (owner and key), the least recently answered first (a Map keeps its insertion order). */
  private readonly kept = new Map<string, Kept<T>>();
  /** By owner, their kept pages. */
  private readonly held = new Map<string, Held>();
  /** By page key, the read of it under way that may be kept (requests for the same page meanwhile share it). */
  private readonly readOf = new Map<string, Reading<T>>();
  private bytes = 0;
  private readonly limits: OwnerPagesLimits;

  constructor(private readonly options: OwnerPagesOptions<T>) {
    this.limits = options.limits ?? DEFAULT_OWNER_PAGES;
  }

  /** The owner's page `key`: as answered lately, if nothing of the owner's changed since, else `load`ed. */
  async read(owner: Owner, key: string, load: () => Promise<T>): Promise<T> {
    const o = ownerKey(owner);
    const k = `${o}\u0000${key}`;
    const hearing = this.options.hearing();
    const hit = hearing ? this.kept.get(k) : undefined;
    if (hit && Date.now() - hit.at <= this.limits.maxAgeMs) {
      const { keys } = this.held.get(o)!;
      this.kept.delete(k); // to the end: the most recently answered
      this.kept.set(k, hit);
      keys.delete(k);
      keys.add(k);
      this.options.answered?.('kept');
      return hit.value;
    }
    this.options.answered?.('read');
    // the same page being read, begun after the owner's last change: its answer is as fresh as a new read's
    const under = this.readOf.get(k);
    if (under && !under.stale && hearing) return under.value;
    const r: Reading<T> = { owner: o, stale: !hearing, value: load() };
    if (!r.stale) this.readOf.set(k, r); // in place of a stale one, if any
    try {
      const value = await r.value;
      if (!r.stale && this.options.hearing()) this.keep(o, k, value);
      return value;
    } finally {
      if (this.readOf.get(k) === r) this.readOf.delete(k);
    }
  }

  /** Something of `owner`'s changed: their pages are read anew, and reads under way are not kept. */
  changed(owner: Owner | typeof EVERY_OWNER): void {
    const o = owner === EVERY_OWNER ? null : ownerKey(owner);
    for (const r of this.readOf.values()) if (o === null || r.owner === o) r.stale = true;
    for (const each of o === null ? [...this.held.keys()] : [o])
      for (const k of this.held.get(each)?.keys ?? []) this.drop(k);
  }

  private keep(o: string, k: string, value: T): void {
    this.drop(k);
    const bytes = this.options.sizeOf(value) + 2 * k.length;
    if (bytes > this.limits.bytesPerOwner) return;
    const held = this.held.get(o) ?? { keys: new Set<string>(), bytes: 0 };
    this.held.set(o, held);
    for (const oldest of held.keys) {
      if (held.keys.size < this.limits.pagesPerOwner && held.bytes + bytes <= this.limits.bytesPerOwner) break;
      this.drop(oldest);
    }
    for (const oldest of this.kept.keys()) {
      if (this.bytes + bytes <= this.limits.bytes) break;
      this.drop(oldest);
    }
    this.kept.set(k, { owner: o, value, bytes, at: Date.now() });
    this.held.set(o, held); // again: dropping its last page above let it go
    held.keys.add(k);
    held.bytes += bytes;
    this.bytes += bytes;
  }

  private drop(k: string): void {
    const page = this.kept.get(k);
    if (!page) return;
    this.kept.delete(k);
    this.bytes -= page.bytes;
    const held = this.held.get(page.owner)!;
    held.keys.delete(k);
    held.bytes -= page.bytes;
    if (held.keys.size === 0) this.held.delete(page.owner);
  }
}
