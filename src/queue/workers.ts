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

/** A worker that serves models: its id, and the most jobs it claims at once (WORKER_MAX_JOBS). */
export interface ServingWorker {
  workerId: string;
  maxJobs: number;
}

/** Puts models in the catalog (or updates them); with a worker, that worker serves them from now on. */
export async function registerModels(
  prisma: PrismaClient,
  entries: ModelEntry[],
  worker?: ServingWorker,
): Promise<void> {
  for (const e of entries) {
    await prisma.model.upsert({ where: { name: e.name }, create: e, update: e });
    if (worker) await heartbeat(prisma, worker, [e.name]);
  }
}

/** A worker is alive and serves these models (rows written again if they were removed), on the database's clock. */
export async function heartbeat(
  prisma: PrismaClient,
  { workerId, maxJobs }: ServingWorker,
  models: string[],
): Promise<void> {
  await prisma.$executeRaw`
    INSERT INTO "ModelWorker" ("model", "workerId", "heartbeatAt", "maxJobs")
    SELECT m, ${workerId}, now(), ${maxJobs}::int FROM unnest(${models}::text[]) AS m
    ON CONFLICT ("model", "workerId") DO UPDATE SET "heartbeatAt" = now(), "maxJobs" = EXCLUDED."maxJobs"`;
}

/** A worker stops serving a model. */
export async function unregister(prisma: PrismaClient, workerId: string, model: string): Promise<void> {
  await prisma.modelWorker.deleteMany({ where: { workerId, model } });
}
