/**
 * The worker's reads and writes of generations and images: start a generation, add
 * a pass's images (with progress, in one transaction that first checks each generation still runs), end it
 * (with its last pass) or fail it. Each change NOTIFYs the API instances, once per generation.
 * Every write after the start is fenced by the job's lease (queue.ts): a worker that lost it throws
 * LeaseLost and its transaction keeps nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Generation, PrismaClient } from '../db/generated/client.ts';
import type { Database } from '../db/database.ts';
import { notifyGeneration } from '../events/notify.ts';
import { CHANNELS } from '../events/topics.ts';
import { STARTED, complete } from '../queue/queue.ts';
import { messageOf } from '../errors.ts';

/**
 * Marks claimed generations RUNNING that their claim did not start (claim starts those it can); returns them with how
 * many images each already has. Queued ones start in one statement: locked in id order (as a store of a pass and a
 * cancel lock them), started at the database's clock (finishedAt's), each with one NOTIFY; they have no images yet.
 * Only one an earlier attempt started is read again, with its images.
 */
export async function startGenerations(
  prisma: PrismaClient,
  ids: string[],
): Promise<{ generation: Generation; done: Set<number> }[]> {
  const rows = await prisma.$queryRawUnsafe<(Generation & { notified: string })[]>(
    `WITH l AS (
       SELECT "id" FROM "Generation" WHERE "id" = ANY($1::uuid[]) AND "status" = 'QUEUED' ORDER BY "id" FOR UPDATE),
     s AS (
       UPDATE "Generation" g SET "status" = 'RUNNING', "startedAt" = clock_timestamp()
         FROM l WHERE g."id" = l."id" RETURNING g.*)
     SELECT ${STARTED}, pg_notify($2, "id"::text)::text AS "notified" FROM s`,
    ids,
    CHANNELS.generation,
  );
  const started = rows.map(({ notified: _, ...generation }) => generation);
  const fresh = new Set(started.map((g) => g.id));
  const again = ids.filter((id) => !fresh.has(id));
  const resumed = again.length
    ? await prisma.generation.findMany({
        where: { id: { in: again } },
        include: { images: { select: { index: true } } },
      })
    : [];
  return [
    ...started.map((generation) => ({ generation, done: new Set<number>() })),
    ...resumed.map(({ images, ...generation }) => ({ generation, done: new Set(images.map((i) => i.index)) })),
  ];
}

export interface NewImage {
  index: number;
  caption: string;
  seed: number;
  mix: number | null;
  width: number;
  height: number;
  png: Uint8Array;
}

/** One generation's share of a pass: its images, and whether they are its last. */
export interface PassItem {
  generation: Generation;
  jobId: bigint;
  images: NewImage[];
  finish: boolean;
}

/** What became of one generation's images of a pass: stored (and, with `finish`, the generation ended). */
export type Stored = 'stored' | 'finished' | 'canceled' | 'lost';

/**
 * Stores a pass's images, of every generation in it, and their progress in one round trip (the store_pass
 * migration's function, one transaction): the generations and leases are checked and locked (in id order),
 * the images go in one multi-row insert, the progress in one update, and each generation gets one NOTIFY. A
 * generation that stopped running ('canceled': make no more images for it) or whose job this worker no
 * longer holds ('lost') keeps nothing of the pass; the others are not held back by it. A pass without images
 * ends a generation whose images an earlier attempt stored; a worker that died after storing some images
 * leaves them, and its successor's duplicates are skipped. The PNGs go as one binary parameter, their bytes
 * back to back (the store_pass_png_bytes migration), straight through the pool: no copy of them is hex- or
 * base64-encoded on the way.
 */
export async function storePass(db: Pick<Database, 'query'>, workerId: string, items: PassItem[]) {
  return storeOnce(db, workerId, items, newTokens(items));
}

/**
 * storePass, and once more after `retryMs` if it throws (a dropped connection, a lost deadlock), where it would
 * otherwise cost every generation of the pass an attempt; `warn` hears why. The first attempt may have committed
 * with only its answer lost: the retry then keeps no image twice, but reads a generation that attempt ended as
 * 'canceled' (it no longer runs). So the retry sends the first attempt's image tokens, and a finishing generation
 * read 'canceled' whose images with those tokens are stored was ended by that attempt: 'finished'. (One that did
 * not finish and reads 'canceled' or 'lost' was canceled or taken over in between: that stands. A pass without
 * images, which only ends a generation, has no tokens to tell by.) The look-up only corrects that count: if it
 * fails, the retry's answer stands.
 */
export async function storePassRetried(
  db: Pick<Database, 'query'>,
  workerId: string,
  items: PassItem[],
  retryMs: number,
  warn: (message: string) => void,
): Promise<Map<string, Stored>> {
  const tokens = newTokens(items);
  try {
    return await storeOnce(db, workerId, items, tokens);
  } catch (err) {
    warn(`storing a pass failed, trying once more: ${messageOf(err)}`);
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
  const outcome = await storeOnce(db, workerId, items, tokens);
  const unsure = items.flatMap((item, k) =>
    item.finish && outcome.get(item.generation.id) === 'canceled'
      ? item.images.map((image, i) => ({ g: item.generation.id, n: image.index, t: tokens[k][i] }))
      : [],
  );
  if (unsure.length === 0) return outcome;
  try {
    const ended = await db.query<{ generationId: string }>(
      `SELECT DISTINCT i."generationId"::text AS "generationId"
         FROM "Image" i JOIN unnest($1::uuid[], $2::int[], $3::text[]) AS x(g, n, t)
           ON i."generationId" = x.g AND i."index" = x.n AND i."token" = x.t`,
      [unsure.map((u) => u.g), unsure.map((u) => u.n), unsure.map((u) => u.t)],
    );
    for (const { generationId } of ended) outcome.set(generationId, 'finished');
  } catch (err) {
    warn(`a pass stored on its retry; whether its first attempt ended some generations is unknown: ${messageOf(err)}`);
  }
  return outcome;
}

/** Each image's token (its URL's secret), drawn once for a pass, so that a retry sends the same ones. */
const newTokens = (items: PassItem[]): string[][] =>
  items.map((i) => i.images.map(() => randomBytes(16).toString('hex')));

async function storeOnce(
  db: Pick<Database, 'query'>,
  workerId: string,
  items: PassItem[],
  tokens: string[][],
): Promise<Map<string, Stored>> {
  const images = items.flatMap((item, k) =>
    item.images.map((image, i) => ({ generationId: item.generation.id, token: tokens[k][i], ...image })),
  );
  const column = <T>(f: (image: (typeof images)[number]) => T) => images.map(f);
  const rows = await db.query<{ generationId: string; outcome: Stored }>(
    `SELECT "generationId"::text AS "generationId", "outcome" FROM "ganvas_store_pass"(
       $1, $2::uuid[], $3::bigint[], $4::boolean[], $5::uuid[], $6::int[], $7::int[], $8::int[], $9::text[],
       $10::int[], $11::float8[], $12::text[], $13::bytea, $14::int[], $15)`,
    [
      workerId,
      items.map((i) => i.generation.id),
      items.map((i) => String(i.jobId)),
      items.map((i) => i.finish),
      column((m) => m.generationId),
      column((m) => m.index),
      column((m) => m.width),
      column((m) => m.height),
      column((m) => m.caption),
      column((m) => m.seed),
      column((m) => m.mix),
      column((m) => m.token),
      Buffer.concat(column((m) => m.png)),
      column((m) => m.png.length),
      CHANNELS.generation,
    ],
  );
  return new Map(rows.map((r) => [r.generationId, r.outcome]));
}

/** The last attempt failed: the generation ends FAILED with the error, and leaves the queue. */
export async function failGeneration(
  prisma: PrismaClient,
  generationId: string,
  jobId: bigint,
  workerId: string,
  error: string,
): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await tx.generation.updateMany({
      where: { id: generationId, status: { in: ['QUEUED', 'RUNNING'] } },
      data: { status: 'FAILED', error, finishedAt: new Date() },
    });
    await complete(tx, jobId, workerId);
    await notifyGeneration(tx, generationId);
  });
}

/**
 * A job whose generation was canceled or is gone leaves the queue, if it is still there: the cancel deletes its
 * generation's job itself (cancelWith), so a worker drawing it usually finds it gone, and says nothing of it.
 */
export async function dropJob(prisma: PrismaClient, jobId: bigint, workerId: string): Promise<void> {
  await prisma.job.deleteMany({ where: { id: jobId, lockedBy: workerId } });
}
