/**
 * The job queue, in Postgres. A job is enqueued in the same transaction as its generation; workers claim
 * batches with FOR UPDATE SKIP LOCKED (concurrent claimers never get the same job), hold a lease they
 * renew, and a job whose lease ran out (its worker died) is claimable again. Each function is one query.
 */
import type { Prisma, PrismaClient } from '../db/generated/client.ts';
import { CHANNELS } from '../events/topics.ts';

export type Tx = Prisma.TransactionClient;

export interface ClaimedJob {
  id: bigint;
  generationId: string;
  attempts: number;
  maxAttempts: number;
}

/** Inside the caller's transaction: the job row, and a wake-up for idle workers (sent at commit). */
export async function enqueue(tx: Tx, generationId: string): Promise<void> {
  await tx.job.create({ data: { generationId } });
  await tx.$executeRaw`SELECT pg_notify(${CHANNELS.jobs}, ${generationId})`;
}

/** Claims up to `limit` due jobs of the given models, oldest first, leased to `workerId`. */
export async function claim(prisma: PrismaClient, workerId: string, models: string[], limit: number, leaseSeconds: number): Promise<ClaimedJob[]> {
  return prisma.$queryRaw<ClaimedJob[]>`
    UPDATE "Job" AS j
       SET "lockedBy" = ${workerId},
           "lockedUntil" = now() + make_interval(secs => ${leaseSeconds}::int),
           "attempts" = j."attempts" + 1
     WHERE j."id" IN (
       SELECT q."id" FROM "Job" q JOIN "Generation" g ON g."id" = q."generationId"
        WHERE q."runAt" <= now()
          AND (q."lockedUntil" IS NULL OR q."lockedUntil" < now())
          AND g."model" = ANY(${models}::text[])
        ORDER BY q."id"
        LIMIT ${limit}
        FOR UPDATE OF q SKIP LOCKED)
    RETURNING j."id", j."generationId"::text AS "generationId", j."attempts", j."maxAttempts"`;
}

/** Extends the lease on jobs this worker still holds; returns the ids it still holds. */
export async function renew(prisma: PrismaClient, workerId: string, ids: bigint[], leaseSeconds: number): Promise<bigint[]> {
  if (ids.length === 0) return [];
  const rows = await prisma.$queryRaw<{ id: bigint }[]>`
    UPDATE "Job" SET "lockedUntil" = now() + make_interval(secs => ${leaseSeconds}::int)
     WHERE "id" = ANY(${ids}::bigint[]) AND "lockedBy" = ${workerId}
    RETURNING "id"`;
  return rows.map((r) => r.id);
}

/** Removes a finished job (inside the transaction that records the generation's end). */
export async function complete(tx: Tx, id: bigint): Promise<void> {
  await tx.job.deleteMany({ where: { id } });
}

/** Hands a failed attempt back for a retry after `delaySeconds`, keeping its error. */
export async function retryLater(prisma: PrismaClient, id: bigint, error: string, delaySeconds: number): Promise<void> {
  await prisma.$executeRaw`
    UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, "lastError" = ${error},
           "runAt" = now() + make_interval(secs => ${delaySeconds}::int)
     WHERE "id" = ${id}`;
}

/** Hands jobs back untouched (a worker shutting down): claimable at once, the attempt not counted. */
export async function release(prisma: PrismaClient, workerId: string, ids: bigint[]): Promise<void> {
  if (ids.length === 0) return;
  await prisma.$executeRaw`
    UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, "attempts" = GREATEST("attempts" - 1, 0)
     WHERE "id" = ANY(${ids}::bigint[]) AND "lockedBy" = ${workerId}`;
}
