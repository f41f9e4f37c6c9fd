/**
 * Deleting generations: one, a filtered set of an owner's, or (RETENTION_DAYS) every finished one older
 * than that. A generation goes with its images, job and webhook deliveries (foreign keys cascade); a worker
 * drawing one finds it gone before its next image and stops; its subscribers are told, and its image URLs
 * answer 404 from then on. Deletes run in batches, each its own short transaction.
 */
import { type GenerationKind, type GenerationStatus, Prisma, type PrismaClient } from '../db/generated/client.ts';
import { notifyGenerations } from '../events/notify.ts';
import { logFailure } from '../db/unavailable.ts';
import { type Logger, counted } from '../ops/log.ts';
import { repeat } from '../ops/repeat.ts';

const BATCH = 500;
/** First key of the advisory lock that lets one process at a time sweep. */
const RETENTION_LOCK = 0x72657465; // "rete"
const SWEEP_EVERY_MS = 3_600_000;

export interface DeleteFilter {
  owner: string | null;
  status?: GenerationStatus | null;
  kind?: GenerationKind | null;
  createdBefore?: Date | null;
}

/**
 * Deletes an owner's generations that match, BATCH at a time; returns how many. Rows are locked first, in id
 * order (as a worker's store of a pass and a cancel lock them: no deadlock with either; a worker storing a pass
 * finishes it), and the filters hold on the locked rows.
 */
export async function deleteMatching(prisma: PrismaClient, f: DeleteFilter, only?: string): Promise<number> {
  // only the filters given, each as an index can serve it (the owner's and its creation times: one index), so a
  // key with a few generations in a large table reads only those
  const conditions = [
    f.owner === null ? Prisma.sql`"apiKeyId" IS NULL` : Prisma.sql`"apiKeyId" = ${f.owner}::uuid`,
    ...(only ? [Prisma.sql`"id" = ${only}::uuid`] : []),
    ...(f.status ? [Prisma.sql`"status" = ${f.status}::"GenerationStatus"`] : []),
    ...(f.kind ? [Prisma.sql`"kind" = ${f.kind}::"GenerationKind"`] : []),
    ...(f.createdBefore ? [Prisma.sql`"createdAt" < ${f.createdBefore}::timestamptz`] : []),
  ];
  let total = 0;
  for (;;) {
    const ids = await prisma.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<{ id: string }[]>`
        DELETE FROM "Generation" WHERE "id" IN (
          SELECT "id" FROM "Generation"
           WHERE ${Prisma.join(conditions, ' AND ')}
           ORDER BY "id"
           LIMIT ${BATCH}
           FOR UPDATE)
        RETURNING "id"::text AS "id"`;
      if (rows.length > 0)
        await notifyGenerations(
          tx,
          rows.map((r) => r.id),
        );
      return rows.map((r) => r.id);
    });
    total += ids.length;
    if (ids.length < BATCH) return total;
  }
}

/**
 * Deletes every finished generation (any owner) that finished more than `days` ago and has no webhook message
 * still to send (a later sweep takes it once that is delivered or given up on), BATCH at a time (until `stopped`:
 * a process shutting down ends after its batch), while
 * this process holds the sweep's advisory lock (another process sweeping makes this one stop). Returns how many.
 */
export async function deleteExpired(
  prisma: PrismaClient,
  days: number,
  stopped: () => boolean = () => false,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await prisma.$transaction(async (tx) => {
      const [{ mine }] = await tx.$queryRaw<{ mine: boolean }[]>`
        SELECT pg_try_advisory_xact_lock(${RETENTION_LOCK}, 0) AS "mine"`;
      if (!mine) return 0;
      const rows = await tx.$queryRaw<{ id: string }[]>`
        DELETE FROM "Generation" WHERE "id" IN (
          SELECT "id" FROM "Generation"
           WHERE "status" IN ('SUCCEEDED', 'FAILED', 'CANCELED')
             AND "finishedAt" < now() - make_interval(days => ${days}::int)
             -- a webhook message still being sent (WEBHOOK_RETRY_FOR_SECONDS may outlast the retention) keeps it
             AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d
                              WHERE d."generationId" = "Generation"."id" AND d."status" = 'PENDING')
           LIMIT ${BATCH}
           FOR UPDATE SKIP LOCKED)
        RETURNING "id"::text AS "id"`;
      if (rows.length > 0)
        await notifyGenerations(
          tx,
          rows.map((r) => r.id),
        );
      return rows.length;
    });
    total += deleted;
    if (deleted < BATCH || stopped()) return total; // the rest at the next sweep, this process's or another's
  }
}

/** Sweeps now and every hour; stop() ends it. */
export const startRetention = (prisma: PrismaClient, days: number, log: Logger): { stop(): Promise<void> } =>
  repeat(SWEEP_EVERY_MS, (stopped) =>
    deleteExpired(prisma, days, stopped).then(
      (n) => {
        if (n > 0) log.info(`retention: deleted ${counted(n, 'generation')} finished over ${counted(days, 'day')} ago`);
      },
      (err: unknown) => logFailure(log, 'retention: sweep failed', err),
    ),
  );
