/**
 * A small seeded PRNG (mulberry32) with normal draws (Box-Muller). ganvas draws every z and every
 * initial weight from it, so a seed means the same numbers on every backend, and its one-word state is
 * saved in checkpoints so that training resumes exactly.
 */
export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The whole state, to store in a checkpoint and restore with `Rng.fromState`. */
  save(): { state: number; spare: number | null } {
    return { state: this.state, spare: this.spare };
  }

  static fromState(saved: { state: number; spare: number | null }): Rng {
    const rng = new Rng(saved.state);
    rng.spare = saved.spare;
    return rng;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  normals(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

/**
 * The noise for one image, `dim` long (ModelConfig latentDim: z, then e where the model samples its conditioning): a
 * pure function of its seed, the same on every backend; its first values do not depend on `dim`.
 */
export function noiseForSeed(seed: number, dim: number): Float32Array {
  return new Rng(seed).normals(dim);
}
