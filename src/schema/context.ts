/** What every resolver receives: the service, the model catalog, this instance's pubsub, and whose request it is. */
import type { GenerationPubSub } from '../events/bridge.ts';
import type { ModelCatalog } from '../generations/models.ts';
import DataLoader from 'dataloader';
import type { Delivery, GenerationService, ImageMeta, Owner } from '../generations/service.ts';

export interface Context {
  service: GenerationService;
  models: ModelCatalog;
  pubsub: GenerationPubSub;
  owner: Owner;
  images: PerGeneration<ImageMeta>;
  deliveries: PerGeneration<Delivery>;
}

/**
 * Rows that belong to the generations in one response (images, webhook deliveries): one query for all of
 * them (DataLoader batching), and one read per Generation object, shared by the fields that need them
 * (`images` and `animationUrl`). Nothing is cached by id: a subscription's context lives across events, and
 * every event carries a fresh Generation object.
 */
export class PerGeneration<T> {
  private readonly loader: DataLoader<string, T[]>;
  private readonly read = new WeakMap<object, Promise<T[]>>();

  constructor(ofMany: (generationIds: readonly string[]) => Promise<T[][]>) {
    this.loader = new DataLoader(ofMany, { cache: false });
  }

  of(g: { id: string }): Promise<T[]> {
    let rows = this.read.get(g);
    if (!rows) this.read.set(g, (rows = this.loader.load(g.id)));
    return rows;
  }
}

/** The per-request part of a context. */
export const perRequest = (service: GenerationService): Pick<Context, 'images' | 'deliveries'> => ({
  images: new PerGeneration((ids) => service.imagesOfMany(ids)),
  deliveries: new PerGeneration((ids) => service.deliveriesOfMany(ids)),
});
