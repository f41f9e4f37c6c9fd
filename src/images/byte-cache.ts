/** A least-recently-used cache of byte strings, bounded by their total size. */
export class ByteCache {
  private readonly entries = new Map<string, Uint8Array>();
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Uint8Array | undefined {
    const bytes = this.entries.get(key);
    if (bytes) {
      this.entries.delete(key); // to the back: used last
      this.entries.set(key, bytes);
    }
    return bytes;
  }

  /** Keeps `bytes` under `key` (unless they alone exceed the bound), dropping the least recently used as needed. */
  set(key: string, bytes: Uint8Array): void {
    this.delete(key);
    if (bytes.length > this.maxBytes) return;
    this.entries.set(key, bytes);
    this.total += bytes.length;
    for (const [oldest, b] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.total -= b.length;
    }
  }

  private delete(key: string): void {
    const bytes = this.entries.get(key);
    if (bytes) this.total -= bytes.length;
    this.entries.delete(key);
  }

  get bytes(): number {
    return this.total;
  }
}
