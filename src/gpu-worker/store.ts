/**
 * The worker's reads and writes of generations and images: read style images, start a generation, add
 * images (with its progress, in one transaction that first checks the generation still runs), finish or
 * fail it. Each change NOTIFYs the API instances.
 * Every write after the start is fenced by the job's lease (queue.ts): a worker that lost it throws
 * LeaseLost and its transaction keeps nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Generation, PrismaClient } from '../db/generated/client.ts';
import { notifyGeneration } from '../events/notify.ts';
import { assertHeld, complete } from '../queue/queue.ts';

/** Marks the claimed generations RUNNING; returns them with how many images each already has. */
export async function startGenerations(
  prisma: PrismaClient,
  ids: string[],
): Promise<{ generation: Generation; done: Set<number> }[]> {
  return prisma.$transaction(async (tx) => {
    await tx.generation.updateMany({
      where: { id: { in: ids }, status: 'QUEUED' },
      data: { status: 'RUNNING', startedAt: new Date() },
    });
    const gens = await tx.generation.findMany({
      where: { id: { in: ids } },
      include: { images: { select: { index: true } } },
    });
    for (const g of gens) await notifyGeneration(tx, g.id);
    return gens.map(({ images, ...generation }) => ({ generation, done: new Set(images.map((i) => i.index)) }));
  });
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

/**
 * Stores images of one generation and its progress in one transaction, unless the generation stopped
 * running (canceled): false means make no more images for it.
 */
export async function storeImages(
  prisma: PrismaClient,
  g: Generation,
  images: NewImage[],
  job: { id: bigint; workerId: string },
): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    await assertHeld(tx, job.id, job.workerId);
    const rows = await tx.$queryRaw<
      { status: string }[]
    >`SELECT "status" FROM "Generation" WHERE "id" = ${g.id}::uuid FOR UPDATE`;
    if (rows[0]?.status !== 'RUNNING') return false;
    // a worker that died after storing some images leaves them; its successor skips duplicates
    const data = images.map((image) => ({
      generationId: g.id,
      ...image,
      token: randomBytes(16).toString('hex'),
      png: new Uint8Array(image.png),
    }));
    await tx.image.createMany({ data, skipDuplicates: true });
    const stored = await tx.image.count({ where: { generationId: g.id } });
    await tx.generation.update({ where: { id: g.id }, data: { progress: stored / g.imageCount } });
    await notifyGeneration(tx, g.id);
    return true;
  });
}

export async function finishGeneration(
  prisma: PrismaClient,
  g: Generation,
  jobId: bigint,
  workerId: string,
): Promise<void> {
  await prisma.$transaction(async (tx) => {
    await complete(tx, jobId, workerId);
    await tx.generation.updateMany({
      where: { id: g.id, status: 'RUNNING' },
      data: { status: 'SUCCEEDED', progress: 1, finishedAt: new Date() },
    });
    await notifyGeneration(tx, g.id);
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
    await complete(tx, jobId, workerId);
    await tx.generation.updateMany({
      where: { id: generationId, status: { in: ['QUEUED', 'RUNNING'] } },
      data: { status: 'FAILED', error, finishedAt: new Date() },
    });
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
