/**
 * The service behind the GraphQL API: validates requests, writes a generation and its job in one
 * transaction, cancels, and answers queries. Resolvers call exactly one of these functions.
 */
import { randomInt, timingSafeEqual } from 'node:crypto';
import {
  type Generation,
  type GenerationKind,
  type GenerationStatus,
  type Image,
  Prisma,
  type PrismaClient,
} from '../db/generated/client.ts';
import type { WebhookEvent } from '../db/generated/enums.ts';
import type { Database } from '../db/database.ts';
import { columns } from '../db/columns.ts';
import { UserError, badInput, notFound, rateLimited, unavailable } from '../errors.ts';
import { cancelWith } from '../queue/queue.ts';
import { CHANNELS } from '../events/topics.ts';
import { encodePng, readPngText } from '../images/png.ts';
import { decodeUpload, uploadDigest } from '../images/upload.ts';
import { type Delivery, deliveriesOf, signingSecrets, undelivered } from '../webhooks/deliveries.ts';
import { TargetError, parseTargetUrl, resolveTarget } from '../webhooks/target.ts';
import { Admission, type NewGeneration, type QuotaStanding, type Quotas } from './admission.ts';
import { imagePath } from './urls.ts';
import {
  FIRST_DATE,
  LIMITS,
  checkCaption,
  checkDate,
  checkId,
  checkIds,
  checkIdempotencyKey,
  checkRange,
  isId,
} from './limits.ts';
import { deleteMatching } from './retention.ts';
import type { ModelCatalog } from './models.ts';

export type { Delivery, Image };
/** An image as the API shows it: all but its bytes, with the path they are served at. */
export type ImageMeta = Omit<Image, 'png'> & { url: string };
const withUrl = (image: Omit<Image, 'png'>): ImageMeta => Object.assign(image, { url: imagePath(image) });

/** Whose work a call is about: an API key's id, or null in open mode. Nobody sees another owner's work. */
export type Owner = string | null;

const DAY_MS = 86_400_000;

export const TERMINAL: GenerationStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELED'];
/** Uploaded style images of one API key decoded at once by one API process; more at the same time are RATE_LIMITED. */
export const STYLE_DECODES_PER_KEY = 2;
/**
 * Webhook host names of one API key looked up at once by one API process (each up to 5 s of DNS queries, and a name
 * that does not resolve is refused without counting against a quota); more at the same time are RATE_LIMITED.
 */
export const WEBHOOK_LOOKUPS_PER_KEY = 4;

/** At most `most` of one owner's calls at once; one more is RATE_LIMITED, to send again in a second. */
class PerOwner {
  private readonly now = new Map<Owner, number>();

  constructor(
    private readonly most: number,
    private readonly refusal: (running: number) => string,
  ) {}

  async run<T>(owner: Owner, f: () => Promise<T>): Promise<T> {
    const running = this.now.get(owner) ?? 0;
    if (running >= this.most) throw rateLimited(this.refusal(running), 1);
    this.now.set(owner, running + 1);
    try {
      return await f();
    } finally {
      const left = this.now.get(owner)! - 1;
      if (left > 0) this.now.set(owner, left);
      else this.now.delete(owner);
    }
  }
}

/** The requests the service takes: the GraphQL input types (schema/types.ts) implement these. */
export interface WebhookInput {
  url: string;
  events?: WebhookEvent[] | null;
}
/** What every request that creates a generation may add. */
interface Creates {
  model?: string | null;
  webhook?: WebhookInput | null;
  idempotencyKey?: string | null;
}
/** Open mode's owner (no API key) where the idempotency index needs a value (the idempotency_key migration). */
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
/** What every request of a kind has. */
type RequestShape = Pick<NewGeneration, 'kind' | 'captions' | 'imageCount'>;
/** What a request gave beyond that (absent: not given): a request sent again with its idempotency key must match. */
interface Given {
  seed?: number | null;
  endSeed?: number | null;
  model?: string | null;
  styleImageId?: string | null;
  webhookUrl?: string | null;
}
export interface GenerateImagesInput extends Creates {
  caption: string;
  count?: number | null;
  seed?: number | null;
}
export interface InterpolateCaptionsInput extends Creates {
  from: string;
  to: string;
  steps?: number | null;
  seed?: number | null;
}
export interface InterpolateNoiseInput extends Creates {
  caption: string;
  fromSeed?: number | null;
  toSeed?: number | null;
  steps?: number | null;
}
export interface TransferStyleInput extends Creates {
  imageId?: string | null;
  image?: string | null;
  captions: string[];
}

export interface ServiceOptions {
  quotas?: Quotas;
  /** Told of each cancel (the API counts them in its metrics). */
  onCanceled?: () => void;
  /**
   * Told when this service has made, canceled or deleted an owner's generations, before it answers (the API drops
   * the pages it kept of that owner: OwnerPages).
   */
  onChanged?: (owner: Owner) => void;
  /** Accept webhook URLs that resolve to private or loopback addresses (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivateWebhooks?: boolean;
  /** A key with this many webhook messages undelivered asks for no more (MAX_UNDELIVERED_WEBHOOKS by default). */
  maxUndeliveredWebhooks?: number;
}

/**
 * Webhook messages one key may have waiting (its receiver down or slow) before its requests with a webhook are
 * RATE_LIMITED: without a bound, one key's dead receiver would grow the table, and the retries each dispatcher
 * sends, without end (a claim reads only the messages due: docs/scaling.md). 2,000 is an hour and more of a busy
 * key's COMPLETED messages.
 */
export const MAX_UNDELIVERED_WEBHOOKS = 2000;
/** When to send again a request whose webhook host's lookup timed out or failed at the DNS (SERVICE_UNAVAILABLE). */
const DNS_RETRY_SECONDS = 5;
export interface PageArgs {
  first?: number | null;
  after?: string | null;
  status?: GenerationStatus | null;
  kind?: GenerationKind | null;
  createdBefore?: Date | null;
  ids?: readonly string[] | null;
}

export interface DeleteArgs {
  status?: GenerationStatus | null;
  kind?: GenerationKind | null;
  createdBefore?: Date | null;
}

/** One line of usage: a UTC day, kind and model. */
export interface UsageRow {
  day: string;
  kind: GenerationKind;
  model: string;
  generations: number;
  images: number;
}

const MAX_USAGE_DAYS = 366;

/** A page's statement (GenerationService.pageQuery). */
export interface PageQuery {
  sql: string;
  params: unknown[];
  first: number;
  withImages: boolean;
  key: string;
}

export interface Page {
  nodes: GenerationRow[];
  /** Each node's images, where they were read with it. */
  images: ImageMeta[][] | null;
  hasNextPage: boolean;
  cursorOf(g: GenerationRow): string;
}

/** Constant-time token check; a token of any length or characters that is not the one stored is just wrong. */
const sameToken = (a: string, b: string) => {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
};

const newSeed = () => randomInt(0, 2 ** 31 - 1);
/** The stored style image's text chunk that holds the SHA-256 of the file it was decoded from (an upload's). */
const UPLOAD_DIGEST = 'upload-sha256';
/** What the API reads of a generation: all but the style image's bytes (only the worker reads those). */
const GENERATION_COLUMNS = columns(Prisma.GenerationScalarFieldEnum, 'stylePng', ['captions', 'webhookEvents']);
const IMAGE_COLUMNS = columns(Prisma.ImageScalarFieldEnum, 'png');
/** An image's fields but its bytes, in the order IMAGES_JSON lists them. */
const IMAGE_FIELDS = Object.values(Prisma.ImageScalarFieldEnum).filter((f) => f !== 'png');
/**
 * The images of a generation in index order as one JSON column (aggregated by "generationId"), so that a generation
 * and its images are one statement. Each image is an array of IMAGE_FIELDS: Postgres built a page's objects (names
 * and all) in 0.7 ms of CPU, its arrays in 0.28 (docs/benchmarks.md, session 38).
 */
const IMAGES_JSON = `json_agg(json_build_array(${IMAGE_FIELDS.map((f) => `"${f}"`).join(', ')}) ORDER BY index)`;
type WithImages = GenerationRow & { images: unknown[][] | null };
/** A row read with IMAGES_JSON as the row and its images (JSON carries a time as text: a Date, as a row has it). */
const splitImages = ({ images, ...row }: WithImages): { row: GenerationRow; images: ImageMeta[] } => ({
  row,
  images: (images ?? []).map((values) => {
    const image: Record<string, unknown> = {};
    IMAGE_FIELDS.forEach((f, k) => (image[f] = values[k]));
    image.createdAt = new Date(image.createdAt as string);
    return withUrl(image as Omit<Image, 'png'>);
  }),
});
/**
 * The parameters of a statement being written: `p` adds one and gives its placeholder. The API's hot reads (a page, a
 * generation by id, what subscribers read) go straight to the pool, as prepared statements: Prisma's client cost more
 * CPU than the query it sent (docs/benchmarks.md, session 10).
 */
function parameters(): { params: unknown[]; p: (v: unknown) => string } {
  const params: unknown[] = [];
  return { params, p: (v) => `$${params.push(v)}` };
}
/** The SQL condition "owned by `owner`" (open mode: no key); `p` adds the parameter. */
const ownedBy = (owner: Owner, p: (v: unknown) => string) =>
  owner === null ? '"apiKeyId" IS NULL' : `"apiKeyId" = ${p(owner)}::uuid`;
export type GenerationRow = Omit<Generation, 'stylePng'>;

/**
 * `earlier`, the generation an idempotency key made, if `request` asks for what it asked (and `given` for what was
 * given then: what was left to the server, a random seed say, is not compared); else BAD_USER_INPUT.
 */
function sameRequest(earlier: GenerationRow, request: RequestShape, given: Given): GenerationRow {
  const differs =
    earlier.kind !== request.kind ||
    earlier.imageCount !== request.imageCount ||
    earlier.captions.join('\u0000') !== request.captions.join('\u0000') ||
    (Object.keys(given) as (keyof Given)[]).some((k) => given[k] != null && given[k] !== earlier[k]);
  if (differs) throw reusedKey(earlier);
  return earlier;
}

const deletedMeanwhile = (key: string | null) =>
  notFound(`the generation made for idempotencyKey "${key}" was deleted meanwhile`);
/** The key's generation is in extensions too, so that a client can read it without parsing the message. */
const reusedKey = (earlier: GenerationRow) =>
  badInput(
    `idempotencyKey "${earlier.idempotencyKey}" was used for another request (generation ${earlier.id}): use a new key for a new request`,
    'idempotencyKey',
    { generationId: earlier.id },
  );

const cursorOf = (g: GenerationRow) => Buffer.from(`${g.createdAt.toISOString()}|${g.id}`).toString('base64url');

function parseCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  const refused = () => badInput('after is not a cursor from this API', 'after');
  if (!id || Number.isNaN(createdAt.getTime())) throw refused();
  try {
    return { createdAt: checkDate('after', createdAt), id: checkId('after', id) };
  } catch {
    throw refused(); // its parts named apart ("not a valid id") would point at something the client never sent
  }
}

export class GenerationService {
  private readonly admission: Admission;

  private readonly prisma: PrismaClient;
  private readonly decoding = new PerOwner(
    STYLE_DECODES_PER_KEY,
    (n) => `${n} style images of this key are being read now; send the next one when one of them has been admitted`,
  );
  private readonly lookingUp = new PerOwner(
    WEBHOOK_LOOKUPS_PER_KEY,
    (n) =>
      `${n} webhook host names of this key are being looked up now; send the next request with a webhook when one of them has been admitted`,
  );

  constructor(
    private readonly db: Database,
    private readonly models: ModelCatalog,
    private readonly options: ServiceOptions = {},
  ) {
    this.prisma = db.prisma;
    this.admission = new Admission(db, options.quotas ?? { perMinute: 120, queued: 200, imagesPerDay: null });
  }

  /**
   * A request's webhook, checked: an http(s) URL to an address it may reach, and the events (COMPLETED by default).
   * Its name is looked up only for an owner who may ask for `images` more images now: a key over its limits
   * cannot make the server resolve names (each lookup sends DNS queries for up to 5 s, target.ts).
   */
  private async webhookOf(
    owner: Owner,
    input: Creates,
    images: number,
  ): Promise<{ webhookUrl?: string; webhookEvents?: WebhookEvent[] }> {
    if (!input.webhook) return {};
    const events = [...new Set<WebhookEvent>(input.webhook.events ?? ['COMPLETED'])];
    if (events.length === 0) throw badInput('webhook.events: name at least one event, or send no webhook', 'webhook');
    try {
      parseTargetUrl(input.webhook.url); // its syntax before the limits
      await this.admission.check(owner, images);
      const most = this.options.maxUndeliveredWebhooks ?? MAX_UNDELIVERED_WEBHOOKS;
      const waiting = await undelivered(this.prisma, owner, most);
      if (waiting >= most)
        throw rateLimited(
          `${waiting} webhook messages of this key are not delivered yet (its receiver is down or slow); ask without a webhook, or once they are delivered`,
          60,
        );
      const { url } = await this.lookingUp.run(owner, () =>
        resolveTarget(input.webhook!.url, this.options.allowPrivateWebhooks ?? false),
      );
      return { webhookUrl: url.href, webhookEvents: events };
    } catch (err) {
      if (err instanceof TargetError)
        throw err.transient
          ? unavailable(`webhook.url ${err.message}: send the request again in a moment`, DNS_RETRY_SECONDS)
          : badInput(`webhook.url ${err.message}`, 'webhook');
      throw err;
    }
  }

  /** The owner's limits and what it uses of each now. */
  quota(owner: Owner): Promise<QuotaStanding> {
    return this.admission.standing(owner);
  }

  /** The secret that signs the owner's webhook messages (its API key's, or open mode's). */
  async webhookSecret(owner: Owner): Promise<string> {
    return (await signingSecrets(this.prisma, owner))[0];
  }

  /**
   * Admits the request (src/generations/admission.ts): the generation as it was written, QUEUED (a worker
   * may have claimed it since; subscriptions tell).
   */
  private async create(owner: Owner, data: NewGeneration): Promise<GenerationRow | null> {
    const { id, createdAt, existing } = await this.admission.admit(owner, data);
    this.options.onChanged?.(owner);
    if (existing) return null; // the same idempotency key's request was admitted a moment before this one
    const { stylePng: _, ...g } = data;
    return {
      id,
      createdAt,
      ...g,
      idempotencyKey: g.idempotencyKey ?? null,
      endSeed: g.endSeed ?? null,
      styleImageId: g.styleImageId ?? null,
      webhookUrl: g.webhookUrl ?? null,
      webhookEvents: g.webhookEvents ?? [],
      apiKeyId: owner,
      status: 'QUEUED',
      progress: 0,
      error: null,
      startedAt: null,
      finishedAt: null,
    };
  }

  /**
   * A request with an idempotency key that made a generation before (a retry) answers that generation, as it is
   * now, and nothing else is checked, made or counted; otherwise its webhook is checked, `make` gives the rest
   * (what costs: decoding an upload), and it is admitted. A retry that overlapped the first request (sent while
   * the first was still being checked) answers the first one's generation too, even where its own checks failed.
   * `sameSource`, where given, compares what `given` cannot (an uploaded image) with the earlier generation's.
   */
  private async admitOnce(
    owner: Owner,
    input: Creates,
    request: RequestShape,
    given: Given,
    make: () => Promise<Omit<NewGeneration, keyof RequestShape>>,
    sameSource?: (earlier: GenerationRow) => Promise<boolean>,
  ): Promise<GenerationRow> {
    const idempotencyKey = checkIdempotencyKey(input.idempotencyKey);
    const earlier = async () => {
      if (idempotencyKey === null) return null;
      const [g] = await this.db.query<GenerationRow>(
        `SELECT ${GENERATION_COLUMNS} FROM "Generation"
          WHERE coalesce("apiKeyId", '${ZERO_UUID}'::uuid) = coalesce($1::uuid, '${ZERO_UUID}'::uuid)
            AND "idempotencyKey" = $2`, // the idempotency_key migration's index
        [owner, idempotencyKey],
      );
      if (!g) return null;
      sameRequest(g, request, given);
      if (sameSource && !(await sameSource(g))) throw reusedKey(g);
      return g;
    };
    if (input.webhook)
      try {
        given = { ...given, webhookUrl: parseTargetUrl(input.webhook.url).href };
      } catch {
        // not a URL: webhookOf says why
      }
    const found = await earlier();
    if (found) return found;
    try {
      const hook = await this.webhookOf(owner, input, request.imageCount);
      const made = await this.create(owner, { ...request, ...(await make()), ...hook, idempotencyKey });
      if (made) return made;
    } catch (err) {
      if (idempotencyKey === null || !(err instanceof UserError)) throw err;
      const meanwhile = await earlier();
      if (meanwhile) return meanwhile;
      throw err;
    }
    const meanwhile = await earlier();
    if (!meanwhile) throw deletedMeanwhile(idempotencyKey);
    return meanwhile;
  }

  async generateImages(owner: Owner, input: GenerateImagesInput): Promise<GenerationRow> {
    const caption = checkCaption('caption', input.caption);
    const count = checkRange('count', input.count ?? LIMITS.count.default, LIMITS.count);
    const model = await this.models.resolve(input.model);
    const request: RequestShape = { kind: 'TEXT_TO_IMAGE', captions: [caption], imageCount: count };
    return this.admitOnce(owner, input, request, { seed: input.seed, model: input.model }, async () => ({
      seed: input.seed ?? newSeed(),
      model: model.name,
    }));
  }

  async interpolateCaptions(owner: Owner, input: InterpolateCaptionsInput): Promise<GenerationRow> {
    const from = checkCaption('from', input.from);
    const to = checkCaption('to', input.to);
    const steps = checkRange('steps', input.steps ?? LIMITS.steps.default, LIMITS.steps);
    const model = await this.models.resolve(input.model);
    const request: RequestShape = { kind: 'CAPTION_INTERPOLATION', captions: [from, to], imageCount: steps };
    return this.admitOnce(owner, input, request, { seed: input.seed, model: input.model }, async () => ({
      seed: input.seed ?? newSeed(),
      model: model.name,
    }));
  }

  /** One caption, z moving from z(fromSeed) to z(toSeed): style changes, content stays (section 5.4). */
  async interpolateNoise(owner: Owner, input: InterpolateNoiseInput): Promise<GenerationRow> {
    const caption = checkCaption('caption', input.caption);
    const steps = checkRange('steps', input.steps ?? LIMITS.steps.default, LIMITS.steps);
    if (input.fromSeed != null && input.fromSeed === input.toSeed)
      throw badInput(
        'toSeed is fromSeed: every image would be the same one (give another seed, or none for a random one)',
        'toSeed',
      );
    const model = await this.models.resolve(input.model);
    const request: RequestShape = { kind: 'NOISE_INTERPOLATION', captions: [caption], imageCount: steps };
    const given = { seed: input.fromSeed, endSeed: input.toSeed, model: input.model };
    return this.admitOnce(owner, input, request, given, async () => ({
      seed: input.fromSeed ?? newSeed(),
      endSeed: input.toSeed ?? newSeed(),
      model: model.name,
    }));
  }

  /** New captions drawn with the style of a stored image (imageId) or of an uploaded PNG/JPEG (image, base64). */
  async transferStyle(owner: Owner, input: TransferStyleInput): Promise<GenerationRow> {
    if ((input.imageId == null) === (input.image == null)) throw badInput('give exactly one of imageId and image');
    checkRange('captions (number of)', input.captions.length, LIMITS.captions);
    const captions = input.captions.map((c, i) => checkCaption(`captions[${i}]`, c));
    const request: RequestShape = { kind: 'STYLE_TRANSFER', captions, imageCount: captions.length };
    // a model named is checked first, as the other requests check theirs (without one, an imageId's is its image's)
    const named = input.model != null ? await this.models.resolve(input.model) : null;
    if (input.image != null) {
      const model = named ?? (await this.models.resolve(null));
      const digest = uploadDigest(input.image); // the file's, kept in the stored PNG to compare a retry's with
      // a key used again with an upload: the same file as the first request's (one made from an imageId is not)
      const sameImage = async (earlier: GenerationRow) => {
        if (earlier.styleImageId !== null) return false;
        const row = await this.prisma.generation.findUnique({ where: { id: earlier.id }, select: { stylePng: true } });
        if (!row) throw deletedMeanwhile(earlier.idempotencyKey);
        const stored = row.stylePng && readPngText(Buffer.from(row.stylePng))[UPLOAD_DIGEST];
        return !stored || stored === digest; // none: stored before ganvas kept the digest, not compared
      };
      const make = async () => {
        // before any decoding (a webhook's check did it already); create checks again, atomically. The check cannot
        // see requests that have not been admitted yet, so a key's decodes at once are bounded too (each costs up
        // to ~100 ms of a pool thread).
        if (!input.webhook) await this.admission.check(owner, captions.length);
        const rgb = await this.decoding.run(owner, () => decodeUpload(input.image!, model.imageSize));
        const png = encodePng(rgb, model.imageSize, model.imageSize, { [UPLOAD_DIGEST]: digest });
        return { seed: 0, model: model.name, stylePng: new Uint8Array(png) };
      };
      return this.admitOnce(owner, input, request, { model: input.model }, make, sameImage);
    }
    const imageId = checkId('imageId', input.imageId!);
    return this.admitOnce(owner, input, request, { styleImageId: imageId, model: input.model }, async () => {
      const source = await this.prisma.image.findFirst({
        where: { id: imageId, generation: { apiKeyId: owner } },
        select: { seed: true, generation: { select: { model: true } } },
      });
      if (!source) throw notFound(`image ${imageId} does not exist`);
      // the user named no model: one gone from the catalog is said as such, with what to do
      const model = named ?? (await this.models.list()).find((m) => m.name === source.generation.model);
      if (!model)
        throw badInput(
          `image ${imageId} was drawn by model "${source.generation.model}", which is no longer in the catalog (Query.models); name one with model`,
          'model',
        );
      // its pixels are copied into the row as it is inserted (style_png_copied migration)
      return { seed: source.seed, model: model.name, styleImageId: imageId };
    });
  }

  /**
   * Queued: canceled at once (its job removed). Running: marked, and the worker stops before its next image. One
   * already CANCELED is answered as it is (a cancel sent again after its answer was lost); one that ended otherwise
   * is BAD_USER_INPUT.
   */
  async cancel(owner: Owner, id: string): Promise<GenerationRow> {
    const gid = checkId('id', id);
    // one statement, one round trip: the cancel (cancelWith) and the generation after it, from c where it was canceled
    // now (its new row), else from r, which locks it FOR SHARE: a worker's store of its last pass under way is waited
    // for and then read (the generation finished meanwhile), where a plain read would see it as it was before
    const [found] = await this.db.query<GenerationRow & { canceledNow: boolean }>(
      `${cancelWith('g.*')},
       r AS (SELECT * FROM "Generation" WHERE "id" = $2::uuid AND "apiKeyId" IS NOT DISTINCT FROM $1::uuid FOR SHARE)
       SELECT ${GENERATION_COLUMNS}, true AS "canceledNow" FROM c
       UNION ALL
       SELECT ${GENERATION_COLUMNS}, false FROM r WHERE NOT EXISTS (SELECT 1 FROM c)`,
      [owner, gid, CHANNELS.generation],
    );
    if (!found) throw notFound(`generation ${gid} does not exist`);
    const { canceledNow, ...g } = found;
    if (!canceledNow && g.status !== 'CANCELED') throw badInput(`generation ${gid} has already finished (${g.status})`);
    if (canceledNow) {
      this.options.onChanged?.(owner);
      this.options.onCanceled?.();
    }
    return g;
  }

  /**
   * Deletes one of the owner's generations with its images; a queued or running one stops (its worker
   * finds it gone before its next image). Returns its id.
   */
  async deleteGeneration(owner: Owner, id: string): Promise<string> {
    const gid = checkId('id', id);
    if ((await deleteMatching(this.prisma, { owner }, gid)) === 0) throw notFound(`generation ${gid} does not exist`);
    this.options.onChanged?.(owner);
    return gid;
  }

  /** Deletes the owner's generations that match every criterion given (at least one); returns how many. */
  async deleteGenerations(owner: Owner, args: DeleteArgs): Promise<number> {
    if (args.status == null && args.kind == null && args.createdBefore == null)
      throw badInput('give at least one of status, kind and createdBefore (all of them: createdBefore now)');
    if (args.createdBefore) checkDate('createdBefore', args.createdBefore);
    try {
      return await deleteMatching(this.prisma, { owner, ...args });
    } finally {
      this.options.onChanged?.(owner); // a batch deleted before one failed is gone too
    }
  }

  /**
   * The owner's generations and stored images per UTC day, kind and model, created in [from, to) (default:
   * the 30 days before now); deleted generations no longer count.
   */
  async usage(owner: Owner, from?: Date | null, to?: Date | null): Promise<UsageRow[]> {
    const end = to ? checkDate('to', to) : new Date();
    const start = from ? checkDate('from', from) : new Date(Math.max(end.getTime() - 30 * DAY_MS, FIRST_DATE));
    if (start >= end) throw badInput('from must be before to', 'from');
    if (end.getTime() - start.getTime() > MAX_USAGE_DAYS * DAY_MS)
      throw badInput(`from and to may be at most ${MAX_USAGE_DAYS} days apart`, 'from');
    return this.prisma.$queryRaw<UsageRow[]>`
      SELECT to_char(g."createdAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS "day", g."kind"::text AS "kind", g."model",
             count(DISTINCT g."id")::int AS "generations", count(i."id")::int AS "images"
        FROM "Generation" g LEFT JOIN "Image" i ON i."generationId" = g."id"
       WHERE g."apiKeyId" IS NOT DISTINCT FROM ${owner}::uuid AND g."createdAt" >= ${start} AND g."createdAt" < ${end}
       GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;
  }

  /**
   * A generation (null once deleted) with its images, in one statement: what the subscribers of a change read
   * (LiveReads). Images are looked for only once a pass stored some (progress > 0: ganvas_store_pass sets both).
   */
  async generationWithImages(id: string): Promise<{ row: GenerationRow; images: ImageMeta[] } | null> {
    const [found] = await this.db.query<WithImages>(
      `SELECT ${GENERATION_COLUMNS},
              CASE WHEN g.progress > 0 THEN (SELECT ${IMAGES_JSON} FROM "Image" WHERE "generationId" = g.id) END AS images
         FROM "Generation" g WHERE g.id = $1::uuid`,
      [checkId('id', id)],
      { prepared: true },
    );
    return found ? splitImages(found) : null;
  }

  /** The owner's generation with its images, in one statement; another owner's is NOT_FOUND, as requireGeneration. */
  async requireGenerationWithImages(owner: Owner, id: string): Promise<{ row: GenerationRow; images: ImageMeta[] }> {
    const found = await this.generationWithImages(id);
    if (!found || found.row.apiKeyId !== owner) throw notFound(`generation ${id} does not exist`);
    return found;
  }

  /** The owner's generation; another owner's is NOT_FOUND, exactly like one that does not exist. */
  async requireGeneration(owner: Owner, id: string): Promise<GenerationRow> {
    const { params, p } = parameters();
    const [g] = await this.db.query<GenerationRow>(
      `SELECT ${GENERATION_COLUMNS} FROM "Generation" WHERE id = ${p(checkId('id', id))}::uuid AND ${ownedBy(owner, p)}`,
      params,
      { prepared: true },
    );
    if (!g) throw notFound(`generation ${id} does not exist`);
    return g;
  }

  /**
   * The statement that reads a page of the owner's generations (`withImages`: with the images of each, in the same
   * statement), its arguments checked; `key` tells it from every other page's (OwnerPages keeps answers by it).
   */
  pageQuery(owner: Owner, args: PageArgs, withImages = false): PageQuery {
    const first = checkRange('first', args.first ?? LIMITS.pageSize.default, LIMITS.pageSize);
    const after = args.after != null ? parseCursor(args.after) : null;
    const ids = args.ids != null ? checkIds('ids', args.ids) : null;
    const { params, p } = parameters();
    const where = [
      ownedBy(owner, p),
      ...(args.status ? [`status = ${p(args.status)}::"GenerationStatus"`] : []),
      ...(args.kind ? [`kind = ${p(args.kind)}::"GenerationKind"`] : []),
      ...(args.createdBefore
        ? [`"createdAt" < ${p(checkDate('createdBefore', args.createdBefore))}::timestamptz`]
        : []),
      ...(after ? [`("createdAt", id) < (${p(after.createdAt)}::timestamptz, ${p(after.id)}::uuid)`] : []),
      ...(ids ? [`id = ANY(${p(ids)}::uuid[])`] : []),
    ];
    const newest = `SELECT ${GENERATION_COLUMNS} FROM "Generation" WHERE ${where.join(' AND ')}
      ORDER BY "createdAt" DESC, id DESC LIMIT ${p(first + 1)}`;
    // the page's images in one scan of the page's ids, grouped: a subquery a generation cost Postgres about twice
    const sql = withImages
      ? `WITH g AS MATERIALIZED (${newest}),
              i AS (SELECT "generationId", ${IMAGES_JSON} AS images FROM "Image"
                     WHERE "generationId" = ANY(ARRAY(SELECT id FROM g)) GROUP BY "generationId")
         SELECT g.*, i.images FROM g LEFT JOIN i ON i."generationId" = g.id ORDER BY g."createdAt" DESC, g.id DESC`
      : newest;
    return { sql, params, first, withImages, key: `${sql}\u0000${JSON.stringify(params)}` };
  }

  /** The page `query` reads. */
  async page(query: PageQuery): Promise<Page> {
    const rows = await this.db.query<WithImages>(query.sql, query.params, { prepared: true });
    const shown = rows.slice(0, query.first);
    const read = query.withImages ? shown.map(splitImages) : null; // rows without images are the page as they are
    return {
      nodes: read?.map((n) => n.row) ?? shown,
      images: read?.map((n) => n.images) ?? null,
      hasNextPage: rows.length > query.first,
      cursorOf,
    };
  }

  async requireImage(owner: Owner, id: string): Promise<ImageMeta> {
    const image = await this.prisma.image.findFirst({
      where: { id: checkId('id', id), generation: { apiKeyId: owner } },
      omit: { png: true },
    });
    if (!image) throw notFound(`image ${id} does not exist`);
    return withUrl(image);
  }

  /** The images of several generations in one query (a page of generations), by generation and index. */
  async imagesOf(generationIds: readonly string[]): Promise<ImageMeta[]> {
    const rows = await this.db.query<Omit<Image, 'png'>>(
      `SELECT ${IMAGE_COLUMNS} FROM "Image" WHERE "generationId" = ANY($1::uuid[]) ORDER BY "generationId", index`,
      [generationIds],
      { prepared: true },
    );
    return rows.map(withUrl);
  }

  /** The webhook deliveries of several generations (a page), oldest first. */
  deliveriesOf(generationIds: readonly string[]): Promise<Delivery[]> {
    return deliveriesOf(this.prisma, generationIds);
  }

  /**
   * What /generations/<id>/animation.png draws, or null when the id or its token (its first image's) is wrong:
   * how many images the generation has now, whether it has finished (its animation will not change), and a
   * reader of their PNGs in order. The count comes without reading a PNG, so a cached animation costs one row.
   */
  async animation(
    generationId: string,
    token: string,
  ): Promise<{ images: number; finished: boolean; pngs(): Promise<Uint8Array[]> } | null> {
    if (!isId(generationId)) return null;
    const [row] = await this.db.query<{ images: number; token: string; status: GenerationStatus }>(
      `SELECT count(*)::int AS images, (array_agg(i.token ORDER BY i.index))[1] AS token, g.status
         FROM "Generation" g JOIN "Image" i ON i."generationId" = g.id
        WHERE g.id = $1::uuid GROUP BY g.status`,
      [generationId],
    );
    if (!row || !sameToken(row.token, token)) return null;
    return {
      images: row.images,
      finished: TERMINAL.includes(row.status),
      pngs: async () =>
        (
          await this.db.query<{ png: Uint8Array }>(
            'SELECT png FROM "Image" WHERE "generationId" = $1::uuid ORDER BY index',
            [generationId],
          )
        ).map((r) => r.png),
    };
  }

  /** The PNG bytes for /images/<id>.png?t=<token>, or null when the id or its token is wrong. */
  async png(id: string, token: string): Promise<Uint8Array | null> {
    if (!isId(id)) return null;
    const [row] = await this.db.query<{ png: Uint8Array; token: string }>(
      'SELECT png, token FROM "Image" WHERE id = $1::uuid',
      [id],
      { prepared: true },
    );
    return row && sameToken(row.token, token) ? row.png : null;
  }
}
