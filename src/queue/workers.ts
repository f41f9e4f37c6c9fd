/**
 * Which workers serve which models, in Postgres: a worker registers each model it serves (and puts it in
 * the catalog), says it is alive every HEARTBEAT_MS, and deletes its rows when it stops; a row older than
 * LIVE_SECONDS is a worker that died. Claims (queue.ts) are per model; this says whether anyone claims.
 */
import type { PrismaClient } from '../db/generated/client.ts';
import type { ModelEntry } from '../model/checkpoint-meta.ts';

/** How often a worker says it is alive, and how long after its last word it counts as gone. */
export const HEARTBEAT_MS = 10_000;
export const LIVE_SECONDS = 30;

/** Puts models in the catalog (or updates them); with `workerId`, that worker serves them from now on. */
export async function registerModels(prisma: PrismaClient, entries: ModelEntry[], workerId?: string): Promise<void> {
  for (const e of entries) {
    await prisma.model.upsert({ where: { name: e.name }, create: e, update: e });
    if (workerId) await heartbeat(prisma, workerId, [e.name]);
  }
}

/** A worker is alive and serves these models (rows written again if they were removed), on the database's clock. */
export async function heartbeat(prisma: PrismaClient, workerId: string, models: string[]): Promise<void> {
  await prisma.$executeRaw`
    INSERT INTO "ModelWorker" ("model", "workerId", "heartbeatAt")
    SELECT m, ${workerId}, now() FROM unnest(${models}::text[]) AS m
    ON CONFLICT ("model", "workerId") DO UPDATE SET "heartbeatAt" = now()`;
}

/** A worker stops serving a model. */
export async function unregister(prisma: PrismaClient, workerId: string, model: string): Promise<void> {
  await prisma.modelWorker.deleteMany({ where: { workerId, model } });
}
