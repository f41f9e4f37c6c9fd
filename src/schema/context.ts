/** What every resolver receives: the service, the model catalog, this instance's pubsub, and whose request it is. */
import type { GenerationPubSub } from '../events/bridge.ts';
import type { Estimate, QueueWatch } from '../events/queue-watch.ts';
import type { LiveReads } from './live.ts';
import type { ModelCatalog } from '../generations/models.ts';
import DataLoader from 'dataloader';
import type { Delivery, GenerationService, ImageMeta, Owner } from '../generations/service.ts';
import type { OwnerPages } from '../generations/owner-pages.ts';
import type { GenerationConnection } from './types.ts';

/** A page as an API instance keeps it (OwnerPages): the connection answered, and each node's images where read. */
export interface KeptPage {
  connection: GenerationConnection;
  images: ImageMeta[][] | null;
}

/**
 * About the bytes a kept page holds: its text (two bytes a character at most) and 600 bytes a generation and an image
 * (their other fields, cursors and urls, and the objects themselves), 600 more for the page itself.
 */
export const keptBytes = ({ connection, images }: KeptPage): number => {
  let chars = 0;
  for (const { node } of connection.edges)
    chars +=
      node.captions.reduce((n, c) => n + c.length, 0) +
      (node.error?.length ?? 0) +
      (node.webhookUrl?.length ?? 0) +
      (node.idempotencyKey?.length ?? 0);
  for (const nodeImages of images ?? []) for (const image of nodeImages) chars += image.caption.length;
  const objects = 1 + connection.edges.length + (images?.reduce((n, nodeImages) => n + nodeImages.length, 0) ?? 0);
  return 2 * chars + 600 * objects;
};

export interface Context {
  service: GenerationService;
  models: ModelCatalog;
  pubsub: GenerationPubSub;
  owner: Owner;
  images: PerGeneration<ImageMeta, { id: string; progress: number }>;
  deliveries: PerGeneration<Delivery>;
  /** This instance's view of the queue (positions and estimates). */
  queue: QueueWatch;
  estimates: Estimates;
  /** What subscriptions read on each change: once per change for the whole instance. */
  live: LiveReads;
  /** Pages of generations this instance answered lately, until their owner's next change. */
  pages: OwnerPages<KeptPage>;
}

/**
 * One value per Generation object (a WeakMap memo): fields of one object share a read. A value already known (primed,
 * or read before) is given as itself, not in a promise: a field that resolves synchronously spares graphql-js a
 * promise per object of a list (a page's 20 nodes).
 */
class PerObject<K extends object, T> {
  private readonly read = new WeakMap<K, { value: T } | Promise<T>>();

  constructor(private readonly load: (g: K) => Promise<T>) {}

  of(g: K): T | Promise<T> {
    const known = this.read.get(g);
    if (known) return known instanceof Promise ? known : known.value;
    const reading = this.load(g);
    this.read.set(g, reading);
    reading.then(
      (value) => this.read.get(g) === reading && this.read.set(g, { value }),
      () => {},
    );
    return reading;
  }

  /** `g`'s value, read with it (a page, or LiveReads, reads generations with their images): `of` then asks nothing. */
  prime(g: K, value: T): void {
    this.read.set(g, { value });
  }
}

/** `f` of a value, or of a promise's value once it settles: synchronous where the value is known. */
export const thenOf = <T, R>(v: T | Promise<T>, f: (value: T) => R): R | Promise<R> =>
  v instanceof Promise ? v.then(f) : f(v);

/**
 * One estimate per Generation object, shared by its queuePosition and estimated* fields (and, for subscriptions, by
 * the subscribers of one change: a subscriber joining seconds later may get its times as estimated then).
 */
export class Estimates extends PerObject<Parameters<QueueWatch['estimate']>[0], Estimate> {
  constructor(queue: QueueWatch) {
    super((g) => queue.estimate(g));
  }
}

/**
 * Rows that belong to the generations in one response (images, webhook deliveries): one query for all of
 * them (DataLoader batching; `rowsOf` returns them in the order each list should have), and one read per
 * Generation object, shared by the fields that need them (`images` and `animationUrl`). Nothing is cached by
 * id: a subscription's context lives across events, and every event carries a fresh Generation object.
 */
export class PerGeneration<
  T extends { generationId: string },
  K extends { id: string } = { id: string },
> extends PerObject<K, T[]> {
  /** `none`: a generation known from its own row to have no rows here is not asked about. */
  constructor(rowsOf: (generationIds: readonly string[]) => Promise<T[]>, none: (g: K) => boolean = () => false) {
    const loader = new DataLoader<string, T[]>(
      async (ids) => {
        const by = new Map(ids.map((id) => [id, [] as T[]]));
        for (const r of await rowsOf(ids)) by.get(r.generationId)?.push(r);
        return ids.map((id) => by.get(id)!);
      },
      { cache: false },
    );
    super((g) => (none(g) ? Promise.resolve([]) : loader.load(g.id)));
  }
}

/**
 * The part of a context that caches per Generation object: new for each query and mutation (a kept page's objects
 * answer many: OwnerPages); one for the whole instance's subscriptions, so the subscribers of a change (which share
 * one object, LiveReads) share its reads.
 */
export const generationReads = (
  service: GenerationService,
  queue: QueueWatch,
): Pick<Context, 'images' | 'deliveries' | 'queue' | 'estimates'> => ({
  // progress is 0 until a pass stores images (ganvas_store_pass sets both): a queued or just started generation's
  // events, most of a small request's, cost no images query
  images: new PerGeneration(
    (ids) => service.imagesOf(ids),
    (g: { id: string; progress: number }) => g.progress === 0,
  ),
  deliveries: new PerGeneration((ids) => service.deliveriesOf(ids)),
  queue,
  estimates: new Estimates(queue),
});

/**
 * The generation each image was listed under (Generation.images), on the image's row, so that Image.generation reads
 * nothing. Set on the row, not on a copy of it (a copy of each, spread with its generation, was a seventh of a page's
 * CPU in the API; a WeakMap from image to generation cost as much). Rows are read for one Generation object
 * (PerGeneration), but objects of one generation asked in the same tick share them: a row already listed under
 * another object is copied for this one, so each answers the snapshot it was listed under.
 */
type Listed = ImageMeta & { listedUnder?: object };

/** `images` as Generation.images returns them: each knows `g` as its generation. */
export function listedImages(g: object, images: ImageMeta[]): ImageMeta[] {
  return images.map((image: Listed) => {
    if (image.listedUnder !== undefined && image.listedUnder !== g) return { ...image, listedUnder: g };
    image.listedUnder = g;
    return image;
  });
}

/** The generation `image` was listed under, if it was. */
export const listedUnder = (image: ImageMeta): object | undefined => (image as Listed).listedUnder;
