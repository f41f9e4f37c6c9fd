/** What every resolver receives: the service, the model catalog, this instance's pubsub, and whose request it is. */
import type { GenerationPubSub } from '../events/bridge.ts';
import type { Estimate, QueueWatch } from '../events/queue-watch.ts';
import type { LiveReads } from './live.ts';
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
  /** This instance's view of the queue (positions and estimates). */
  queue: QueueWatch;
  estimates: Estimates;
  /** What subscriptions read on each change: once per change for the whole instance. */
  live: LiveReads;
}

/** One estimate per Generation object, shared by its queuePosition and estimated* fields. */
export class Estimates {
  private readonly read = new WeakMap<object, Promise<Estimate>>();

  constructor(private readonly queue: QueueWatch) {}

  of(g: Parameters<QueueWatch['estimate']>[0]): Promise<Estimate> {
    let e = this.read.get(g);
    if (!e) this.read.set(g, (e = this.queue.estimate(g)));
    return e;
  }
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

/**
 * The part of a context that caches per Generation object: new for each HTTP request; one for the whole
 * instance on WebSockets, so the subscribers of a change (which share one object, LiveReads) share its reads.
 */
export const generationReads = (
  service: GenerationService,
  queue: QueueWatch,
): Pick<Context, 'images' | 'deliveries' | 'queue' | 'estimates'> => ({
  images: new PerGeneration((ids) => service.imagesOfMany(ids)),
  deliveries: new PerGeneration((ids) => service.deliveriesOfMany(ids)),
  queue,
  estimates: new Estimates(queue),
});
