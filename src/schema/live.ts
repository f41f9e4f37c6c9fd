/**
 * What subscribers of one API instance read when a generation changes: each change is read once for all of
 * them (one statement: the generation and its images, which it leaves in the instance's shared PerGeneration), not
 * once per subscriber. A read is keyed by the generation's version (events/bridge.ts), which moves on before the
 * subscribers wake, so every subscriber woken by a change gets a read started after it.
 */
import { type GenerationPubSub, forgetQuietVersions, versionOf } from '../events/bridge.ts';
import { notFound } from '../errors.ts';
import type { GenerationRow, GenerationService, ImageMeta, Owner } from '../generations/service.ts';
import type { PerGeneration } from './context.ts';
import { asGeneration } from './types.ts';

/** Reads are kept this long (they serve the subscribers woken by one change, within milliseconds). */
const KEEP_MS = 5_000;

export class LiveReads {
  private readonly reads = new Map<string, { version: string; at: number; read: Promise<GenerationRow | null> }>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly service: GenerationService,
    private readonly pubsub: GenerationPubSub,
    /** The images of the Generation objects it reads, for the subscribers' `images` and `animationUrl`. */
    private readonly images: PerGeneration<ImageMeta, { id: string; progress: number }>,
  ) {
    this.sweep = setInterval(() => {
      const before = Date.now() - KEEP_MS;
      for (const [id, r] of this.reads) if (r.at < before) this.reads.delete(id);
      forgetQuietVersions(pubsub, 12 * KEEP_MS);
    }, KEEP_MS);
    this.sweep.unref();
  }

  /** The generation as of its latest change this instance knows of (null once deleted). */
  read(id: string): Promise<GenerationRow | null> {
    const version = versionOf(this.pubsub, id);
    const cached = this.reads.get(id);
    if (cached?.version === version) return cached.read;
    // one Generation object for every subscriber of this change: its field resolvers' reads are shared
    const read = this.service.generationWithImages(id).then((found) => {
      if (!found) return null;
      const g = asGeneration(found.row);
      this.images.prime(g, found.images);
      return g;
    });
    this.reads.set(id, { version, at: Date.now(), read });
    read.catch(() => this.reads.delete(id));
    return read;
  }

  /** The owner's generation, as `read`; another owner's (or a deleted one) is NOT_FOUND. */
  async generation(owner: Owner, id: string): Promise<GenerationRow> {
    const g = await this.read(id);
    if (!g || g.apiKeyId !== owner) throw notFound(`generation ${id} does not exist`);
    return g;
  }

  close(): void {
    clearInterval(this.sweep);
  }
}
