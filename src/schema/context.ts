/** What every resolver receives: the service, the model catalog, this instance's pubsub, and whose request it is. */
import type { GenerationPubSub } from '../events/bridge.ts';
import type { ModelCatalog } from '../generations/models.ts';
import type { GenerationService, Owner } from '../generations/service.ts';

export interface Context {
  service: GenerationService;
  models: ModelCatalog;
  pubsub: GenerationPubSub;
  owner: Owner;
}
