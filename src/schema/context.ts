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
  /** Batches the images of every generation in one response into one query; never caches. */
  images: DataLoader<string, ImageMeta[]>;
}

export function imagesLoader(service: GenerationService): DataLoader<string, ImageMeta[]> {
  return new DataLoader((ids) => service.imagesOfMany(ids), { cache: false });
}
