/** What every resolver receives: the service, the model catalog and this instance's pubsub. */
import type { GenerationPubSub } from '../events/bridge.ts';
import type { ModelCatalog } from '../generations/models.ts';
import type { GenerationService } from '../generations/service.ts';

export interface Context {
  service: GenerationService;
  models: ModelCatalog;
  pubsub: GenerationPubSub;
}
