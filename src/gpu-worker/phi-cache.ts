/**
 * phi(t) of the captions a worker has drawn lately, by caption: a caption asked for again (more seeds, an
 * interpolation from an image already made, a retry) skips the caption encoder. phi is a pure function of the
 * caption for one model, so a cached vector is the vector the encoder would give. Least recently used first
 * out; 1,024 captions of a 1024-d phi hold 4 MB.
 */
export class PhiCache {
  private readonly vectors = new Map<string, Float32Array>();

  constructor(
    private readonly embed: (captions: string[]) => Promise<Float32Array[]>,
    private readonly capacity = 1024,
  ) {}

  /** phi of each caption: those not held are embedded in one call. */
  async of(captions: string[]): Promise<Map<string, Float32Array>> {
    const wanted = [...new Set(captions)];
    const missing = wanted.filter((c) => !this.vectors.has(c));
    const fresh = missing.length > 0 ? await this.embed(missing) : [];
    const out = new Map<string, Float32Array>();
    for (const c of wanted) {
      const v = this.vectors.get(c) ?? fresh[missing.indexOf(c)];
      this.vectors.delete(c); // re-inserted last: most recently used
      this.vectors.set(c, v);
      out.set(c, v);
    }
    for (const oldest of this.vectors.keys()) {
      if (this.vectors.size <= this.capacity) break;
      this.vectors.delete(oldest);
    }
    return out;
  }
}
