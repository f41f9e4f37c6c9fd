/**
 * phi(t) of the captions a worker has drawn lately, by caption: a caption asked for again (more seeds, an
 * interpolation from an image already made, a retry) skips the caption encoder. phi is a pure function of the
 * caption for one model, so a cached vector is the vector the encoder would give. Least recently used first
 * out; 1,024 captions of a 1024-d phi hold 4 MB. A caption being embedded is shared too: an idle worker starts phi
 * of a request's captions when its admission's NOTIFY comes, while it claims the request (worker.ts), and the
 * draw then waits for that call instead of making another. A call that fails leaves nothing behind, so the next
 * one embeds again.
 */
export class PhiCache {
  private readonly vectors = new Map<string, Float32Array>();
  private readonly embedding = new Map<string, Promise<Float32Array>>();

  constructor(
    private readonly embed: (captions: string[]) => Promise<Float32Array[]>,
    private readonly capacity = 1024,
  ) {}

  /** phi of each caption: those neither held nor being embedded are embedded in one call. */
  async of(captions: string[]): Promise<Map<string, Float32Array>> {
    const wanted = [...new Set(captions)];
    const missing = wanted.filter((c) => !this.vectors.has(c) && !this.embedding.has(c));
    if (missing.length > 0) {
      const call = this.embed(missing);
      missing.forEach((c, i) => {
        const one = call.then((vs) => vs[i]);
        this.embedding.set(c, one);
        // before any caller's await resumes: kept once there, and no longer in flight (a failed call keeps nothing)
        one.then(
          (v) => {
            this.vectors.set(c, v);
            this.embedding.delete(c);
          },
          () => this.embedding.delete(c),
        );
      });
    }
    const vectors = await Promise.all(wanted.map((c) => this.vectors.get(c) ?? this.embedding.get(c)!));
    const out = new Map<string, Float32Array>();
    wanted.forEach((c, i) => {
      this.vectors.delete(c); // re-inserted last: most recently used
      this.vectors.set(c, vectors[i]);
      out.set(c, vectors[i]);
    });
    for (const oldest of this.vectors.keys()) {
      if (this.vectors.size <= this.capacity) break;
      this.vectors.delete(oldest);
    }
    return out;
  }
}
