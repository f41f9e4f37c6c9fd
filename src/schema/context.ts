/** What every resolver receives: the service, the model catalog, this instance's pubsub, and whose request it is. */
import type { GenerationPubSub } from '../events/bridge.ts';
import type { ModelCatalog } from '../generations/models.ts';
import DataLoader from 'dataloader';
import type { GenerationService, ImageMeta, Owner } from '../generations/service.ts';

export interface Context {
  service: GenerationService;
  models: ModelCatalog;
  pubsub: GenerationPubSub;
  owner: Owner;
  images: ImagesOf;
}

/**
 * The images of the generations in one response: one query for all of them (DataLoader batching), and
 * one read per Generation object, shared by its `images` and `animationUrl` fields. Nothing is cached by
 * id: a subscription's context lives across events, and every event carries a fresh Generation object.
 */
export class ImagesOf {
  private readonly loader: DataLoader<string, ImageMeta[]>;
  private readonly read = new WeakMap<object, Promise<ImageMeta[]>>();

  constructor(service: GenerationService) {
    this.loader = new DataLoader((ids) => service.imagesOfMany(ids), { cache: false });
  }

  of(g: { id: string }): Promise<ImageMeta[]> {
    let images = this.read.get(g);
    if (!images) this.read.set(g, (images = this.loader.load(g.id)));
    return images;
  }
}
