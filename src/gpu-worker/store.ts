/**
 * The worker's reads and writes of generations and images: read style images, start a generation, add
 * a pass's images (with progress, in one transaction that first checks each generation still runs), end it
 * (with its last pass) or fail it. Each change NOTIFYs the API instances, once per generation.
 * Every write after the start is fenced by the job's lease (queue.ts): a worker that lost it throws
 * LeaseLost and its transaction keeps nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Generation, PrismaClient } from '../db/generated/client.ts';
import { notifyGeneration, notifyGenerations } from '../events/notify.ts';
import { complete, heldJobs } from '../queue/queue.ts';

/**
 * Marks the claimed generations RUNNING; returns them with how many images each already has. A queued one
 * (every first attempt) starts in one statement and has none yet; only one an earlier attempt started is read
 * again, with its images. Each started generation gets one NOTIFY, after the update.
 */
export async function startGenerations(
  prisma: PrismaClient,
  ids: string[],
): Promise<{ generation: Generation; done: Set<number> }[]> {
  const started = await prisma.generation.updateManyAndReturn({
    where: { id: { in: ids }, status: 'QUEUED' },
    data: { status: 'RUNNING', startedAt: new Date() },
  });
  const fresh = new Set(started.map((g) => g.id));
  if (started.length) await notifyGenerations(prisma, [...fresh]);
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

/** What became of one generation's images of a pass: stored (and, with `finish`, the generation ended). */
export type Stored = 'stored' | 'finished' | 'canceled' | 'lost';

/**
 * Stores a pass's images, of every generation in it, and their progress in one transaction: the leases and
 * generations are checked and locked in one query each (in id order), the images go in one multi-row
 * insert, the progress in one update, and each generation gets one NOTIFY. A generation that stopped
 * running ('canceled': make no more images for it) or whose job this worker no longer holds ('lost') keeps
 * nothing of the pass; the others are not held back by it. A pass without images ends a generation whose
 * images an earlier attempt stored.
 */
export async function storePass(
  prisma: PrismaClient,
  workerId: string,
  items: { generation: Generation; jobId: bigint; images: NewImage[]; finish: boolean }[],
): Promise<Map<string, Stored>> {
  return prisma.$transaction(async (tx) => {
    // generations before jobs, as cancel and delete lock them: no deadlock with either
    const ids = items.map((i) => i.generation.id).sort();
    const running = new Set(
      (
        await tx.$queryRaw<{ id: string }[]>`
          SELECT "id"::text AS "id" FROM "Generation" WHERE "id" = ANY(${ids}::uuid[]) AND "status" = 'RUNNING'
           ORDER BY "id" FOR UPDATE`
      ).map((r) => r.id),
    );
    const jobIds = items.map((i) => i.jobId).sort((a, b) => (a < b ? -1 : 1));
    const held = new Set((await heldJobs(tx, jobIds, workerId)).map(String));
    const result = new Map<string, Stored>();
    for (const i of items)
      result.set(
        i.generation.id,
        // a cancel also removes the job: not running says why better than not held
        !running.has(i.generation.id) ? 'canceled' : held.has(String(i.jobId)) ? 'stored' : 'lost',
      );
    const storing = items.filter((i) => result.get(i.generation.id) === 'stored');
    if (storing.length === 0) return result;
    // a worker that died after storing some images leaves them; its successor skips duplicates
    const images = storing.flatMap((i) =>
      i.images.map((image) => ({
        generationId: i.generation.id,
        ...image,
        token: randomBytes(16).toString('hex'),
        png: new Uint8Array(image.png),
      })),
    );
    if (images.length > 0) await tx.image.createMany({ data: images, skipDuplicates: true });
    const going = storing.filter((i) => !i.finish).map((i) => i.generation.id);
    await tx.$executeRaw`
      UPDATE "Generation" g
         SET "progress" = (SELECT count(*) FROM "Image" i WHERE i."generationId" = g."id")::float8 / g."imageCount"
       WHERE g."id" = ANY(${going}::uuid[])`;
    // the last images of a generation end it here: one transaction and one NOTIFY fewer than a separate finish
    const ending = storing.filter((i) => i.finish);
    if (ending.length > 0) {
      const ids = ending.map((i) => i.generation.id);
      await tx.$executeRaw`
        UPDATE "Generation" SET "status" = 'SUCCEEDED', "progress" = 1, "finishedAt" = now()
         WHERE "id" = ANY(${ids}::uuid[]) AND "status" = 'RUNNING'`;
      await tx.$executeRaw`DELETE FROM "Job" WHERE "id" = ANY(${ending.map((i) => i.jobId)}::bigint[])`;
      for (const id of ids) result.set(id, 'finished');
    }
    await notifyGenerations(
      tx,
      storing.map((i) => i.generation.id),
    );
    return result;
  });
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

/** A job whose generation was canceled or is gone: just leave the queue. */
export async function dropJob(prisma: PrismaClient, jobId: bigint, workerId: string): Promise<void> {
  await prisma.$transaction((tx) => complete(tx, jobId, workerId));
}

/** The PNG bytes of stored images by id (the style images of transfers); ids that are gone are missing. */
export async function imagePngs(prisma: PrismaClient, ids: string[]): Promise<Map<string, Uint8Array>> {
  const rows = await prisma.image.findMany({ where: { id: { in: ids } }, select: { id: true, png: true } });
  return new Map(rows.map((r) => [r.id, r.png]));
}
