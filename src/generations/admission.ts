/**
 * Admitting a request: the owner's quotas checked and, if they allow it, the generation, its quota use and
 * its job written with both NOTIFYs, in one round trip to Postgres (the functions of the `admission`
 * migration: one statement, one transaction, under a per-owner advisory lock, so concurrent requests of one
 * key count and insert one at a time). A key's use is kept in steps of a second and of a minute (the quota_steps
 * migration), so counting a window costs the same however busy the key. The limits and the messages a refused caller
 * reads are here.
 */
import type { Database } from '../db/database.ts';
import type { GenerationKind, PrismaClient } from '../db/generated/client.ts';
import type { WebhookEvent } from '../db/generated/enums.ts';
import { badInput, rateLimited, unauthenticated } from '../errors.ts';
import { CHANNELS } from '../events/topics.ts';

/** What lockOwner needs of a client: raw queries (a transaction's client). */
type Queryable = Pick<PrismaClient, '$queryRaw'>;

/** An API key's id, or null in open mode. */
type Owner = string | null;

export interface Quotas {
  /** Generations one owner may create in a minute. */
  perMinute: number;
  /** Generations one owner may have queued or running at once. */
  queued: number;
  /** Images one owner may ask for in 24 hours (null: no limit). */
  imagesPerDay: number | null;
}

/** What a new generation is made of. */
export interface NewGeneration {
  /** The request's idempotency key: a generation it already made is answered instead (`existing`). */
  idempotencyKey?: string | null;
  kind: GenerationKind;
  captions: string[];
  seed: number;
  endSeed?: number;
  model: string;
  imageCount: number;
  styleImageId?: string;
  stylePng?: Uint8Array<ArrayBuffer>;
  webhookUrl?: string;
  webhookEvents?: WebhookEvent[];
}

/** An owner's limits (its key's own, else the server's) and what it uses of each now. */
export interface QuotaStanding {
  perMinute: number;
  requestsLastMinute: number;
  queued: number;
  queuedNow: number;
  imagesPerDay: number | null;
  imagesLast24h: number;
}

/** A refusal as the database gives it: which limit, what is used against it, the limit, when room returns. */
interface Refusal {
  refusal: 'revoked' | 'rate' | 'queue' | 'images' | 'daily';
  used: number;
  allowed: number;
  retryAt: Date | null;
}

/** First key of the advisory locks that serialise one owner's quota check and insert. */
const QUOTA_LOCK = 0x67616e76; // "ganv"
/**
 * Takes, until `tx` ends, the lock under which `owner`'s requests are admitted one at a time: what changes an
 * owner's standing (key:revoke) takes it too, so no request is admitted halfway through the change.
 */
export async function lockOwner(tx: Queryable, owner: Owner): Promise<void> {
  await tx.$queryRaw`SELECT pg_advisory_xact_lock(${QUOTA_LOCK}::int, hashtext(coalesce(${owner}::uuid::text, '')))::text`;
}

/** What a caller waiting for queued work to finish is told to wait, in seconds. */
const QUEUE_RETRY_SECONDS = 5;

function refusalError(r: Refusal, images: number): Error {
  const retry = r.retryAt ? Math.max(1, Math.ceil((r.retryAt.getTime() - Date.now()) / 1000)) : QUEUE_RETRY_SECONDS;
  switch (r.refusal) {
    case 'revoked':
      return unauthenticated('this API key was revoked');
    case 'rate':
      return rateLimited(`more than ${r.allowed} requests a minute; retry in ${retry} s`, retry);
    case 'queue':
      return rateLimited(
        `${r.used} generations are already queued or running; wait for some to finish or cancel some (those with waitingFor MODEL wait until a worker for their model starts)`,
        retry,
      );
    case 'images':
      return badInput(`asks for ${images} images; your limit is ${r.allowed} a day`);
    case 'daily':
      return rateLimited(`more than ${r.allowed} images in 24 hours; retry in ${retry} s`, retry);
  }
}

/**
 * Admission's statements go straight to the pool (Database.query), as the API's hot reads do: through Prisma each
 * cost about 0.5 ms more of the API's CPU (its query engine), on every request.
 */
export class Admission {
  constructor(
    private readonly db: Pick<Database, 'query'>,
    /** The server's limits; a key's own (npm run key:limits) override them. */
    private readonly quotas: Quotas,
  ) {}

  /**
   * Throws the error a caller reads if `owner` may not ask for `images` more images now (a check before
   * costly work, such as decoding an upload; `admit` checks again, under the lock).
   */
  async check(owner: Owner, images: number): Promise<void> {
    const { perMinute, queued, imagesPerDay } = this.quotas;
    const [r] = await this.db.query<Refusal>(
      'SELECT * FROM "ganvas_quota_refusal"($1::uuid, $2::int, $3::int, $4::int, $5::int)',
      [owner, images, perMinute, queued, imagesPerDay],
    );
    if (r) throw refusalError(r, images);
  }

  /** The owner's limits and what it uses of them now, counted as admission counts them (one statement). */
  async standing(owner: Owner): Promise<QuotaStanding> {
    const { perMinute, queued, imagesPerDay } = this.quotas;
    const [r] = await this.db.query<QuotaStanding>(
      `SELECT coalesce(k."rateLimitPerMinute", $2::int) AS "perMinute",
             coalesce(k."queueLimit", $3::int) AS "queued",
             coalesce(k."imagesPerDay", $4::int) AS "imagesPerDay",
             (SELECT "used" FROM "ganvas_window_use"(o."step", 1, interval '1 minute', false, 0, NULL))
               AS "requestsLastMinute",
             (SELECT count(*)::int FROM "Generation" g
               WHERE (g."apiKeyId" = o."id" OR (o."id" IS NULL AND g."apiKeyId" IS NULL))
                 AND g."status" IN ('QUEUED', 'RUNNING')) AS "queuedNow",
             (SELECT "used" FROM "ganvas_window_use"(o."step", 60, interval '1 day', true, 0, NULL)) AS "imagesLast24h"
        FROM (SELECT $1::uuid AS "id", coalesce($1::uuid, '00000000-0000-0000-0000-000000000000') AS "step") o
        LEFT JOIN "ApiKey" k ON k."id" = o."id"`,
      [owner, perMinute, queued, imagesPerDay],
    );
    return r;
  }

  /**
   * Writes the generation, its quota use and its job, and notifies; returns its id and creation time (the
   * rest of its row is `g` and the columns' defaults), or throws the refusal.
   */
  async admit(owner: Owner, g: NewGeneration): Promise<{ id: string; createdAt: Date; existing: boolean }> {
    const { perMinute, queued, imagesPerDay } = this.quotas;
    const [r] = await this.db.query<Refusal & { generationId: string | null; createdAt: Date; existing: boolean }>(
      `SELECT * FROM "ganvas_admit"($1::int, $2::uuid, $3::int, $4::int, $5::int, $6::"GenerationKind", $7::text[],
                                    $8::int, $9::int, $10, $11::int, $12::uuid, $13::bytea, $14, $15::text[], $16,
                                    $17, $18)`,
      [
        QUOTA_LOCK,
        owner,
        perMinute,
        queued,
        imagesPerDay,
        g.kind,
        g.captions,
        g.seed,
        g.endSeed ?? null,
        g.model,
        g.imageCount,
        g.styleImageId ?? null,
        g.stylePng ?? null,
        g.webhookUrl ?? null,
        g.webhookEvents ?? null,
        CHANNELS.generation,
        CHANNELS.jobs,
        g.idempotencyKey ?? null,
      ],
      // planned once a pooled connection: Postgres spent 0.09-0.18 ms less on each (docs/benchmarks.md, session 38)
      { prepared: true },
    );
    if (!r.generationId) throw refusalError(r, g.imageCount);
    return { id: r.generationId, createdAt: r.createdAt, existing: r.existing };
  }
}
