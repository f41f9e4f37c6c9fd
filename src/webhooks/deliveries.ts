/**
 * Webhook deliveries in Postgres: the rows the triggers make (prisma/migrations/*_webhooks), claimed by
 * dispatchers with a lease (FOR UPDATE SKIP LOCKED, so two never send one message at once; a dispatcher
 * that died leaves a lease that runs out, and the message is sent again: at least once). Every result a
 * dispatcher records is fenced by the attempt number it claimed. Each function is one query or two.
 */
import { Prisma, type PrismaClient, type WebhookDelivery } from '../db/generated/client.ts';
import type { WebhookEvent } from '../db/generated/enums.ts';
import { animationPath, imagePath } from '../generations/urls.ts';

export type Delivery = Omit<WebhookDelivery, 'body' | 'lockedUntil' | 'seq'>;

export interface ClaimedDelivery {
  id: string;
  /** the order messages were made in */
  seq: bigint;
  generationId: string;
  event: WebhookEvent;
  imageId: string | null;
  /** this attempt's number, from 1: it fences what the dispatcher records */
  attempts: number;
  body: string | null;
  createdAt: Date;
  url: string;
  apiKeyId: string | null;
}

/** How long a rotated-out secret still signs (rotateWebhookSecret). */
const SECRET_OVERLAP_HOURS = 24;

/**
 * Claims up to `limit` due messages for `leaseSeconds`, oldest first; counts the attempt. Only a generation's
 * oldest undelivered message can be claimed: its messages go out one at a time, in order, and a later one
 * waits while an earlier one is retried (the rows say which may go, "behind" and "dueAt", kept by the
 * webhook_head_of_line migration's triggers: a claim reads the due messages only, not those waiting). An API key
 * has at most `perKey` messages on their way at once (over every API process), so a key whose receiver hangs
 * cannot take every sender's slots.
 */
export async function claimDeliveries(
  prisma: PrismaClient,
  limit: number,
  leaseSeconds: number,
  perKey: number,
): Promise<ClaimedDelivery[]> {
  const rows = await prisma.$queryRaw<ClaimedDelivery[]>`
    WITH sending AS (
      SELECT h."apiKeyId", count(*) AS "n"
        FROM "WebhookDelivery" f JOIN "Generation" h ON h."id" = f."generationId"
       WHERE f."status" = 'PENDING' AND f."lockedUntil" IS NOT NULL AND f."lockedUntil" > now() -- a partial index
       GROUP BY h."apiKeyId"),
    due AS (
      SELECT d."id", row_number() OVER (PARTITION BY g."apiKeyId" ORDER BY d."seq") + coalesce(s."n", 0) AS "place"
        FROM "WebhookDelivery" d JOIN "Generation" g ON g."id" = d."generationId"
        LEFT JOIN sending s ON s."apiKeyId" IS NOT DISTINCT FROM g."apiKeyId"
       WHERE d."dueAt" <= now() AND (d."lockedUntil" IS NULL OR d."lockedUntil" < now())) -- dueAt's index
    UPDATE "WebhookDelivery" d
       SET "lockedUntil" = now() + make_interval(secs => ${leaseSeconds}::int), "attempts" = d."attempts" + 1
      FROM "Generation" g
     WHERE g."id" = d."generationId"
       AND d."id" IN (
         SELECT w."id" FROM "WebhookDelivery" w JOIN due ON due."id" = w."id"
          WHERE due."place" <= ${perKey} -- this key's messages on their way, then its due ones in order
            -- again on w itself: a row another sender took meanwhile is re-read when locked
            AND (w."lockedUntil" IS NULL OR w."lockedUntil" < now()) AND w."status" = 'PENDING'
          ORDER BY w."seq"
          LIMIT ${limit}
          FOR UPDATE OF w SKIP LOCKED)
    RETURNING d."id"::text AS "id", d."seq", d."generationId"::text AS "generationId", d."event"::text AS "event",
              d."imageId"::text AS "imageId", d."attempts", d."body", d."createdAt", g."webhookUrl" AS "url",
              g."apiKeyId"::text AS "apiKeyId"`;
  return rows.sort((a, b) => (a.seq < b.seq ? -1 : 1));
}

/**
 * Messages of an API key's generations (open mode's: null) not delivered yet and not given up on, counted up to
 * `upTo` (the index on the key's generations finds them; no other key's are read).
 */
export async function undelivered(prisma: PrismaClient, apiKeyId: string | null, upTo: number): Promise<number> {
  // "= key" (not IS NOT DISTINCT FROM, which no index serves)
  const owner = apiKeyId ? Prisma.sql`g."apiKeyId" = ${apiKeyId}::uuid` : Prisma.sql`g."apiKeyId" IS NULL`;
  const [r] = await prisma.$queryRaw<{ n: number }[]>`
    SELECT count(*)::int AS "n" FROM (
      SELECT 1 FROM "WebhookDelivery" d JOIN "Generation" g ON g."id" = d."generationId"
       WHERE ${owner} AND d."status" = 'PENDING' LIMIT ${upTo}) s`;
  return r.n;
}

/** The secrets that sign an owner's messages: its key's (and the previous one a day after rotating), or open mode's. */
export async function signingSecrets(prisma: PrismaClient, apiKeyId: string | null): Promise<string[]> {
  if (apiKeyId === null) {
    const row = await prisma.setting.findUnique({ where: { name: 'openWebhookSecret' } });
    return row ? [row.value] : [];
  }
  const rows = await prisma.$queryRaw<{ current: string; previous: string | null }[]>`
    SELECT "webhookSecret" AS "current",
           CASE WHEN "webhookSecretRotatedAt" > now() - make_interval(hours => ${SECRET_OVERLAP_HOURS}::int)
                THEN "previousWebhookSecret" END AS "previous"
      FROM "ApiKey" WHERE "id" = ${apiKeyId}::uuid`;
  return rows.flatMap((r) => (r.previous ? [r.current, r.previous] : [r.current]));
}

const TYPES: Record<WebhookEvent, string> = {
  STARTED: 'generation.started',
  IMAGE: 'generation.image',
  COMPLETED: 'generation.completed',
};

/**
 * The JSON a message carries: {type, timestamp (of the event), data: {generation, image (IMAGE only)}}, the
 * generation with the fields and names of the GraphQL type but its live queue estimates and webhook (WebhookGeneration
 * in examples/client.ts), absolute URLs under `baseUrl`. The generation is read at the first attempt and the
 * body stored, so every attempt sends the same bytes. Null when the generation is gone.
 */
export async function messageBody(prisma: PrismaClient, d: ClaimedDelivery, baseUrl: string): Promise<string | null> {
  if (d.body !== null) return d.body;
  const g = await prisma.generation.findUnique({
    where: { id: d.generationId },
    omit: { stylePng: true, apiKeyId: true, webhookUrl: true, webhookEvents: true },
    include: { images: { omit: { png: true, generationId: true }, orderBy: { index: 'asc' } } },
  });
  if (!g) return null;
  const images = g.images.map(({ token, createdAt: _, ...image }) => ({
    ...image,
    url: baseUrl + imagePath({ id: image.id, token }),
  }));
  const animation = animationPath(g.id, g.images);
  const generation = { ...g, images, animationUrl: animation && baseUrl + animation };
  const image = d.imageId ? images.find((i) => i.id === d.imageId) : undefined;
  const body = JSON.stringify({
    type: TYPES[d.event],
    timestamp: d.createdAt.toISOString(),
    data: image ? { generation, image } : { generation },
  });
  // a sender whose lease lapsed may have stored one first: every attempt sends the one stored
  const [stored] = await prisma.$queryRaw<{ body: string }[]>`
    UPDATE "WebhookDelivery" SET "body" = coalesce("body", ${body}) WHERE "id" = ${d.id}::uuid RETURNING "body"`;
  return stored?.body ?? null;
}

/**
 * Just before a message's POST: renews its lease (`leaseSeconds` from now) if this attempt still holds it, so the
 * POST starts with its whole time limit ahead whatever the lookup and the reads before it took. 'lost': the lease
 * lapsed meanwhile (another sender may have the message now, and sends it in its turn): not sent. 'revoked': its API
 * key was revoked since the claim (the revocation leaves a message on its way to its sender, and a sender that died
 * leaves one claimed): not sent (recordFailed then ends it FAILED). 'held': send it.
 */
export async function holdForSending(
  prisma: PrismaClient,
  d: Pick<ClaimedDelivery, 'id' | 'attempts'>,
  leaseSeconds: number,
): Promise<'held' | 'lost' | 'revoked'> {
  const rows = await prisma.$queryRaw<{ revoked: boolean }[]>`
    UPDATE "WebhookDelivery" d SET "lockedUntil" = now() + make_interval(secs => ${leaseSeconds}::int)
      FROM "Generation" g LEFT JOIN "ApiKey" k ON k."id" = g."apiKeyId"
     WHERE g."id" = d."generationId" AND d."id" = ${d.id}::uuid AND d."attempts" = ${d.attempts}
       AND d."status" = 'PENDING' AND d."lockedUntil" > now()
    RETURNING k."revokedAt" IS NOT NULL AS "revoked"`;
  return rows.length === 0 ? 'lost' : rows[0].revoked ? 'revoked' : 'held';
}

/** A 2xx answer: delivered. */
export async function recordDelivered(prisma: PrismaClient, d: ClaimedDelivery, statusCode: number): Promise<void> {
  await prisma.webhookDelivery.updateMany({
    where: { id: d.id, attempts: d.attempts, status: 'PENDING' },
    data: {
      status: 'DELIVERED',
      deliveredAt: new Date(),
      lockedUntil: null,
      lastStatusCode: statusCode,
      lastError: null,
    },
  });
}

/**
 * A failed attempt: tried again in `delaySeconds`, or FAILED when that would be more than `retryForSeconds`
 * after the event, or when its API key was revoked meanwhile (its other messages were dropped then; this one was
 * on its way). Returns the status it is left in; null when the message is gone (its generation deleted meanwhile)
 * or no longer this attempt's.
 */
export async function recordFailed(
  prisma: PrismaClient,
  d: Pick<ClaimedDelivery, 'id' | 'attempts'>,
  failure: { statusCode: number | null; error: string },
  delaySeconds: number,
  retryForSeconds: number,
): Promise<'PENDING' | 'FAILED' | null> {
  const rows = await prisma.$queryRaw<{ status: 'PENDING' | 'FAILED' }[]>`
    UPDATE "WebhookDelivery" d
       SET "status" = CASE WHEN k."revokedAt" IS NOT NULL
                             OR d."createdAt" + make_interval(secs => ${retryForSeconds}::int)
                                < now() + make_interval(secs => ${delaySeconds}::float8)
                           THEN 'FAILED' ELSE 'PENDING' END::"DeliveryStatus",
           "nextAttemptAt" = now() + make_interval(secs => ${delaySeconds}::float8),
           "lockedUntil" = NULL, "lastStatusCode" = ${failure.statusCode}::int,
           "lastError" = ${failure.error} || CASE WHEN k."revokedAt" IS NOT NULL
                                                 THEN '; not retried: the API key was revoked' ELSE '' END
      FROM "Generation" g LEFT JOIN "ApiKey" k ON k."id" = g."apiKeyId"
     WHERE g."id" = d."generationId"
       AND d."id" = ${d.id}::uuid AND d."attempts" = ${d.attempts} AND d."status" = 'PENDING'
    RETURNING d."status"::text AS "status"`;
  return rows[0]?.status ?? null;
}

/** The deliveries of several generations (a page), oldest first. */
export const deliveriesOf = (prisma: PrismaClient, generationIds: readonly string[]): Promise<Delivery[]> =>
  prisma.webhookDelivery.findMany({
    where: { generationId: { in: [...generationIds] } },
    omit: { body: true, lockedUntil: true, seq: true },
    orderBy: { seq: 'asc' },
  });
