/**
 * The job queue, in Postgres. A job is written in the same transaction as its generation (its admission:
 * src/generations/admission.ts, which also wakes idle workers with a NOTIFY on the jobs channel); workers claim
 * batches with FOR UPDATE SKIP LOCKED (concurrent claimers never get the same job), hold a lease they
 * renew, and a job whose lease ran out (its worker died) is claimable again, until it has used its
 * attempts. Every change a worker makes to a job it claimed is fenced by its lease, held under the claim's name: a
 * batch whose lease lapsed (and whose job another claim took, its own worker's next one included) changes nothing.
 * Each function is one query.
 */
import { randomBytes } from 'node:crypto';
import { type Generation, Prisma, type PrismaClient } from '../db/generated/client.ts';
import { columns } from '../db/columns.ts';
import type { Database } from '../db/database.ts';
import { CHANNELS } from '../events/topics.ts';
import { LIVE_SECONDS } from './workers.ts';

export type Tx = Prisma.TransactionClient;

/** A started generation as the worker reads it: every column (the style image's bytes too). */
export const STARTED = columns(Prisma.GenerationScalarFieldEnum, null, ['captions', 'webhookEvents']);

export interface ClaimedJob {
  id: bigint;
  /**
   * The name its lease is held under, `<workerId>/<a token of its claim>`: every later change to the job is fenced by
   * it, so a batch whose lease lapsed keeps nothing once another claim took the job, its own worker's next one too.
   */
  holder: string;
  generationId: string;
  attempts: number;
  maxAttempts: number;
  /**
   * Its generation, which the claim started (RUNNING, with its NOTIFY); null where it did not: one an earlier attempt
   * started, or one it could not lock at once (a cancel holds it). The worker starts those itself (startGenerations).
   */
  started: Generation | null;
}

/**
 * The cancel, as WITH items whose parameters are $1 (the owner), $2 (one generation's id, or null for all of the
 * owner's) and $3 (the generation channel): l locks the owner's unfinished generations (QUEUED or RUNNING) in id order,
 * as a worker's store of a pass locks them (no deadlock with one); c makes them CANCELED, sends each a NOTIFY (at
 * commit) and returns `returning` of each; d deletes their jobs (a worker holding one finds it gone before its next
 * image).
 */
export const cancelWith = (returning: string): string => `
  WITH l AS (
    SELECT "id" FROM "Generation"
     WHERE "apiKeyId" IS NOT DISTINCT FROM $1::uuid AND ($2::uuid IS NULL OR "id" = $2::uuid)
       AND "status" IN ('QUEUED', 'RUNNING')
     ORDER BY "id" FOR UPDATE),
  c AS (
    UPDATE "Generation" g SET "status" = 'CANCELED', "finishedAt" = clock_timestamp()
      FROM l WHERE g."id" = l."id" AND g."status" IN ('QUEUED', 'RUNNING')
      RETURNING ${returning}, pg_notify($3, g."id"::text)::text AS "notified"),
  d AS (DELETE FROM "Job" j USING c WHERE j."generationId" = c."id")`;

/**
 * Inside the caller's transaction (a key's revocation): cancels all the owner's unfinished generations (cancelWith).
 * Returns the ids canceled.
 */
export async function cancelUnfinished(tx: Tx, owner: string | null): Promise<string[]> {
  const canceled = await tx.$queryRawUnsafe<{ id: string }[]>(
    `${cancelWith('g."id"')} SELECT "id"::text AS "id" FROM c`,
    owner,
    null,
    CHANNELS.generation,
  );
  return canceled.map((r) => r.id);
}

/**
 * Claims up to `limit` due jobs of the given models, leased to `workerId` under a name of this claim's own
 * (ClaimedJob.holder), fairly across API keys: each key's oldest job first, then each key's second, and so on (a key
 * with 200 jobs queued delays another key's one job by at most one job, not 200); none unless the jobs it would take
 * ask for at least `minImages` images (an earlier attempt's images count too).
 * Jobs that used all their attempts are not claimed (failExhausted ends them).
 * In the same statement it starts the claimed jobs' generations that are still QUEUED (every first attempt's), as
 * startGenerations would, saving the worker that round trip: locked in id order, at the database's clock, each with
 * one NOTIFY. It skips one it cannot lock at once: a cancel locks the generation, then the job this claim holds, so
 * waiting for it here could deadlock.
 */
export async function claim(
  db: Pick<Database, 'query'>,
  workerId: string,
  models: string[],
  limit: number,
  leaseSeconds: number,
  minImages = 1,
): Promise<ClaimedJob[]> {
  const holder = `${workerId}/${randomBytes(4).toString('hex')}`;
  // prepared, on a light request's path: 0.12-0.17 ms a claim in a one-off, against 0.8-2.2 ms planned on every call
  // (docs/benchmarks.md, session 37)
  const rows = await db.query<ClaimRow>(CLAIM, [holder, models, leaseSeconds, limit, minImages], { prepared: true });
  return rows.map(({ claimedJob, claimedFor, claimedAttempts, claimedMaxAttempts, notified, ...g }) => ({
    id: BigInt(claimedJob), // pg reads a bigint as text
    holder,
    generationId: claimedFor,
    attempts: claimedAttempts,
    maxAttempts: claimedMaxAttempts,
    started: notified === null ? null : g,
  }));
}

/** Job `j` (its alias) may be claimed now: due (not waiting out a retry's delay), not leased, attempts left. */
const claimable = (j: string) =>
  `${j}."runAt" <= now() AND (${j}."lockedUntil" IS NULL OR ${j}."lockedUntil" < now()) AND ${j}."attempts" < ${j}."maxAttempts"`;

/**
 * claim's statement: $1 holder, $2 models, $3 lease seconds, $4 limit, $5 least images. The first places (by turn) are
 * found without ranking the queue: `heads` walks the owners that have due jobs of the models, reading each one's first
 * (a loose index scan: one probe an owner, model by model), and `rounds` reads on from there, each owner in play
 * the same number of jobs more, until it has read as many as `wanted` places (or all): this claim's and as many as
 * the live workers of the models claim at once (WORKER_MAX_JOBS, each says its own), so that claims at the same
 * moment each find theirs past the ones the others are taking, locked and not marked yet. What it reads grows with the
 * owners that have due jobs (and with the dead index entries of the jobs done since the last vacuum) and with `wanted`,
 * not with the queue (docs/benchmarks.md, sessions 42 and 43). The walk's first probe is estimated at one row:
 * Postgres then keeps one generic plan for the prepared statement, where an estimate of ten rows a model kept it
 * planning each claim anew (0.7 ms).
 */
const CLAIM = `
    WITH RECURSIVE heads AS (
      (SELECT d."model", d."owner", d."id", d."generationId" FROM "Job" d
        WHERE d."model" = ANY($2::text[]) AND ${claimable('d')}
        ORDER BY d."model", d."owner", d."id" LIMIT 1)
      UNION ALL
      SELECT n.* FROM heads h CROSS JOIN LATERAL (
        (SELECT d."model", d."owner", d."id", d."generationId" FROM "Job" d
          WHERE d."model" = h."model" AND d."owner" > h."owner" AND ${claimable('d')}
          ORDER BY d."owner", d."id" LIMIT 1)
        UNION ALL
        (SELECT d."model", d."owner", d."id", d."generationId" FROM "Job" d
          WHERE d."model" = ANY($2::text[]) AND d."model" > h."model" AND ${claimable('d')}
          ORDER BY d."model", d."owner", d."id" LIMIT 1)
        -- the next model's first only once this one's owners are all walked: Postgres runs a UNION ALL's arms in turn
        -- and stops at the LIMIT, where an ORDER BY would run both arms on every step (the later models' jobs not due
        -- read again each time)
        LIMIT 1) n),
    -- rounds of reading: in each, every owner still in play reads its next k due jobs, the places still wanted shared
    -- out between them; one that read fewer has no more. After each round every owner in play has read as many jobs
    -- as the others, so the jobs read hold every job of the turns read so far: once they are as many as the places
    -- wanted, they hold the first places
    rounds AS (
      SELECT h."models", h."owners", h."ids" AS "lasts", h."read", n."wanted", h."ids", h."owners" AS "idOwners",
             h."idGenerations"
        FROM (SELECT array_agg("model") AS "models", array_agg("owner") AS "owners", array_agg("id") AS "ids",
                     array_agg("generationId") AS "idGenerations", count(*) AS "read" FROM heads) h,
             -- this claim's places and those the live workers of the models may be taking at the same moment (each
             -- its claim size; at least three claims like this one besides it, for claimers not registered): claims
             -- skip the jobs each other is taking (locked, not marked yet) and each find theirs past them. For each
             -- model asked for: an owner's places may be read in each of them
             (SELECT cardinality($2::text[]) * ($4::int + greatest(3 * $4::int, sum(coalesce(w."maxJobs", $4::int))))
                       AS "wanted"
                FROM "ModelWorker" w
               WHERE w."model" = ANY($2::text[]) AND w."heartbeatAt" > now() - make_interval(secs => ${LIVE_SECONDS})) n
      UNION ALL
      SELECT s."models", s."owners", s."lasts", p."read" + s."read", p."wanted", s."ids", s."idOwners", s."idGenerations"
        FROM rounds p
        CROSS JOIN LATERAL (SELECT ceil((p."wanted" - p."read")::numeric / cardinality(p."owners"))::int AS "k") k
        CROSS JOIN LATERAL (
          SELECT count(*) AS "read", array_agg(f."id") AS "ids", array_agg(f."owner") AS "idOwners",
                 array_agg(f."generationId") AS "idGenerations",
                 -- those that read their k, and the last job each read
                 array_agg(f."model") FILTER (WHERE f."nth" = k."k") AS "models",
                 array_agg(f."owner") FILTER (WHERE f."nth" = k."k") AS "owners",
                 array_agg(f."id") FILTER (WHERE f."nth" = k."k") AS "lasts"
            FROM unnest(p."models", p."owners", p."lasts") o("model", "owner", "last") CROSS JOIN LATERAL (
              SELECT d."id", d."model", d."owner", d."generationId",
                     row_number() OVER (ORDER BY d."owner", d."id" ROWS UNBOUNDED PRECEDING) AS "nth"
                FROM "Job" d
               -- the owner's jobs after the last one it read, from there in the index; the owner also as an upper
               -- bound, not an equality: with one the planner may drop the owner from the order it needs and read the
               -- jobs by id, through every other owner's (all the queue, for an owner with jobs at its end)
               WHERE d."model" = o."model" AND (d."owner", d."id") > (o."owner", o."last") AND d."owner" <= o."owner"
                 AND ${claimable('d')}
               ORDER BY d."owner", d."id" LIMIT k."k") f) s
       WHERE p."read" < p."wanted" AND cardinality(p."owners") > 0),
    -- the first places: the jobs read by turn (each owner's first, then each owner's second...), then by age
    due AS (
      SELECT p.* FROM (
        SELECT t."id", t."generationId", t."turn", row_number() OVER (ORDER BY t."turn", t."id") AS "place"
          FROM (SELECT u."id", u."generationId", row_number() OVER (PARTITION BY u."owner" ORDER BY u."id") AS "turn"
                  FROM rounds r CROSS JOIN LATERAL unnest(r."ids", r."idOwners", r."idGenerations")
                                                     u("id", "owner", "generationId")) t) p
       WHERE p."place" <= (SELECT "wanted" FROM rounds LIMIT 1)),
    c AS (
    UPDATE "Job" AS j
       SET "lockedBy" = $1::text,
           "lockedUntil" = now() + make_interval(secs => $3::int),
           "attempts" = j."attempts" + 1
     WHERE j."id" IN (
       SELECT q."id" FROM "Job" q JOIN due ON due."id" = q."id"
        -- again on q itself: a row another claimer took meanwhile is re-read when locked, and these re-checked; q read
        -- by its ids (not a hash of the whole table)
        WHERE q."id" = ANY(ARRAY(SELECT "id" FROM due))
          AND ${claimable('q')}
          -- the images that the jobs this claim may take ask for
          AND (SELECT sum((SELECT g."imageCount" FROM "Generation" g WHERE g."id" = due."generationId"))
                 FROM due WHERE due."place" <= $4::int) >= $5::int
        ORDER BY due."turn", q."id"
        LIMIT $4::int
        FOR UPDATE OF q SKIP LOCKED)
    RETURNING j."id" AS "claimedJob", j."generationId" AS "claimedFor", j."attempts" AS "claimedAttempts",
              j."maxAttempts" AS "claimedMaxAttempts"),
    l AS (
      SELECT g."id" FROM "Generation" g JOIN c ON c."claimedFor" = g."id"
       WHERE g."status" = 'QUEUED' ORDER BY g."id" FOR UPDATE OF g SKIP LOCKED),
    s AS (
      UPDATE "Generation" g SET "status" = 'RUNNING', "startedAt" = clock_timestamp()
        FROM l WHERE g."id" = l."id" RETURNING g.*),
    -- a CTE with a volatile function is evaluated once: one NOTIFY a generation
    st AS (SELECT ${STARTED}, pg_notify('${CHANNELS.generation}', "id"::text)::text AS "notified" FROM s)
    SELECT c."claimedJob", c."claimedFor"::text AS "claimedFor", c."claimedAttempts", c."claimedMaxAttempts", st.*
      FROM c LEFT JOIN st ON st."id" = c."claimedFor"`;

/** A claimed job's row: the job, then its generation's columns (all null where the claim did not start it). */
type ClaimRow = Generation & {
  claimedJob: bigint | string;
  claimedFor: string;
  claimedAttempts: number;
  claimedMaxAttempts: number;
  notified: string | null;
};

/**
 * Ends the jobs that used every attempt without finishing (their workers died each time: a job that
 * kills its worker is not retried without end): the generation FAILED with why (and a NOTIFY), the job gone.
 * Generations are locked first, in id order, as a store of a pass and a cancel lock them (then the job): one
 * that something holds is left for the next sweep rather than waited for. Returns the generations it failed.
 */
export async function failExhausted(prisma: PrismaClient): Promise<string[]> {
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    WITH l AS (
      SELECT g."id" FROM "Generation" g JOIN "Job" j ON j."generationId" = g."id"
       WHERE j."attempts" >= j."maxAttempts" AND (j."lockedUntil" IS NULL OR j."lockedUntil" < now())
       ORDER BY g."id" FOR UPDATE OF g SKIP LOCKED),
    dead AS (
      DELETE FROM "Job" j USING l
       WHERE j."generationId" = l."id"
         AND j."attempts" >= j."maxAttempts" AND (j."lockedUntil" IS NULL OR j."lockedUntil" < now())
      RETURNING j."generationId", j."attempts", j."lastError"),
    failed AS (
      UPDATE "Generation" g
         SET "status" = 'FAILED', "finishedAt" = now(),
             "error" = 'gave up after ' || dead."attempts" || ' attempts: ' || COALESCE(dead."lastError", 'the worker stopped while running it')
        FROM dead
       WHERE g."id" = dead."generationId" AND g."status" IN ('QUEUED', 'RUNNING')
      RETURNING g."id")
    SELECT "id"::text AS "id", pg_notify(${CHANNELS.generation}, "id"::text)::text AS "notified" FROM failed`;
  return rows.map((r) => r.id);
}

/** Thrown inside a transaction when the worker no longer holds the job's lease: nothing it did there is kept. */
export class LeaseLost extends Error {
  constructor(readonly jobId: bigint) {
    super(`job ${jobId}: lease lost (lapsed, and another worker took the job)`);
    this.name = 'LeaseLost';
  }
}

/** Extends the lease on jobs this worker still holds; returns the ids it still holds. */
export async function renew(
  prisma: PrismaClient,
  workerId: string,
  ids: bigint[],
  leaseSeconds: number,
): Promise<bigint[]> {
  if (ids.length === 0) return [];
  const rows = await prisma.$queryRaw<{ id: bigint }[]>`
    UPDATE "Job" SET "lockedUntil" = now() + make_interval(secs => ${leaseSeconds}::int)
     WHERE "id" = ANY(${ids}::bigint[]) AND "lockedBy" = ${workerId}
    RETURNING "id"`;
  return rows.map((r) => r.id);
}

/**
 * Removes a finished job held by `workerId` (inside the transaction that records the generation's end), or throws
 * LeaseLost.
 */
export async function complete(tx: Tx, id: bigint, workerId: string): Promise<void> {
  const { count } = await tx.job.deleteMany({ where: { id, lockedBy: workerId } });
  if (count === 0) throw new LeaseLost(id);
}

/**
 * Hands a failed attempt back for a retry after `delaySeconds`, keeping its error; false if `workerId` no longer held
 * it.
 */
export async function retryLater(
  prisma: PrismaClient,
  id: bigint,
  workerId: string,
  error: string,
  delaySeconds: number,
): Promise<boolean> {
  const n = await prisma.$executeRaw`
    UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, "lastError" = ${error},
           "runAt" = now() + make_interval(secs => ${delaySeconds}::int)
     WHERE "id" = ${id} AND "lockedBy" = ${workerId}`;
  return n === 1;
}

/**
 * Hands claimed jobs back untouched (a worker shutting down): claimable at once, the attempt not counted, with a NOTIFY
 * on the jobs channel for each, as at admission, so that an idle worker takes them now rather than at its next poll.
 * The generations their claim started (nothing drawn yet, the job still this worker's) are QUEUED again, each with its
 * NOTIFY: locked first, in id order, as a cancel locks them before their jobs, in the same transaction. A
 * generation.started webhook message not yet tried goes with it (one is sent a generation: the next start's).
 */
export async function release(prisma: PrismaClient, workerId: string, jobs: ClaimedJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const ids = jobs.map((j) => j.id);
  const started = jobs.flatMap((j) => (j.started ? [j.started.id] : []));
  await prisma.$transaction(async (tx) => {
    if (started.length > 0)
      await tx.$queryRaw`
        WITH l AS (
          SELECT "id" FROM "Generation"
           WHERE "id" = ANY(${started}::uuid[]) AND "status" = 'RUNNING' AND "progress" = 0
             AND EXISTS (SELECT 1 FROM "Job" j WHERE j."generationId" = "Generation"."id" AND j."lockedBy" = ${workerId})
           ORDER BY "id" FOR UPDATE),
        q AS (UPDATE "Generation" g SET "status" = 'QUEUED', "startedAt" = NULL FROM l WHERE g."id" = l."id" RETURNING g."id"),
        -- its generation.started message, unless a dispatcher has tried to send it: the next start makes a new one.
        -- No message waits behind it (webhook_next runs on an update only): a RUNNING generation with progress 0 has
        -- no image and no end yet, and what would make one (a store, a cancel) locks the generation, as l does
        m AS (DELETE FROM "WebhookDelivery" d USING q
               WHERE d."generationId" = q."id" AND d."event" = 'STARTED' AND d."attempts" = 0)
        SELECT pg_notify(${CHANNELS.generation}, "id"::text)::text AS "notified" FROM q`;
    await tx.$queryRaw`
      WITH r AS (
        UPDATE "Job" SET "lockedBy" = NULL, "lockedUntil" = NULL, "attempts" = GREATEST("attempts" - 1, 0)
         WHERE "id" = ANY(${ids}::bigint[]) AND "lockedBy" = ${workerId}
        RETURNING "generationId")
      SELECT pg_notify(${CHANNELS.jobs}, "generationId"::text)::text AS "notified" FROM r`;
  });
}

/** A waiting job's place: how many jobs of its model a worker would take before it, and their images. */
export interface QueuePlace {
  generationId: string;
  model: string;
  position: number;
  imagesAhead: number;
}

/**
 * The place of every job waiting to be claimed (not leased, attempts left), in the order claim takes them
 * for a worker of its model: each key's oldest first, then each key's second, and so on. Only QUEUED generations':
 * a RUNNING one's job waiting out a retry's delay (or its lapsed lease) is counted with the running images
 * (modelLoads), not a second time here.
 */
export function queuePlaces(prisma: PrismaClient): Promise<QueuePlace[]> {
  return prisma.$queryRaw<QueuePlace[]>`
    WITH waiting AS (
      SELECT j."generationId", j."id", g."model", g."imageCount",
             row_number() OVER (PARTITION BY g."model", g."apiKeyId" ORDER BY j."id") AS "turn"
        FROM "Job" j JOIN "Generation" g ON g."id" = j."generationId"
       WHERE (j."lockedUntil" IS NULL OR j."lockedUntil" < now()) AND j."attempts" < j."maxAttempts"
         AND g."status" = 'QUEUED')
    SELECT "generationId"::text AS "generationId", "model",
           (row_number() OVER w - 1)::int AS "position",
           (sum("imageCount") OVER w - "imageCount")::int AS "imagesAhead"
      FROM waiting
    WINDOW w AS (PARTITION BY "model" ORDER BY "turn", "id")`;
}

/** Per model of the catalog: live workers, images still to draw of the running generations, recent rate. */
export interface ModelLoad {
  model: string;
  workers: number;
  runningImages: number;
  /**
   * Images a second of drawing over the last 10 minutes: the images stored then, of the generations that finished
   * then, over the time one of those was running (the union of their start-to-finish spans: idle time between
   * requests does not count); null with none finished then. Running ones wait until they finish (one a worker
   * handed back would count the time it waited); a span starts on the worker's clock and ends on the database's.
   */
  imagesPerSecond: number | null;
}

export function modelLoads(prisma: PrismaClient): Promise<ModelLoad[]> {
  return prisma.$queryRaw<ModelLoad[]>`
    WITH live AS (
      SELECT "model", count(*)::int AS n FROM "ModelWorker"
       WHERE "heartbeatAt" > now() - make_interval(secs => ${LIVE_SECONDS}) GROUP BY "model"),
    running AS (
      SELECT g."model", sum(g."imageCount" - (SELECT count(*) FROM "Image" i WHERE i."generationId" = g."id"))::int AS n
        FROM "Generation" g WHERE g."status" = 'RUNNING' GROUP BY g."model"),
    finished AS (
      SELECT g."id", g."model", greatest(g."startedAt", now() - interval '10 minutes') AS s, g."finishedAt" AS e
        FROM "Generation" g
       WHERE g."startedAt" IS NOT NULL AND g."finishedAt" > now() - interval '10 minutes'),
    drawn AS (
      SELECT f."model", count(*) AS n FROM "Image" i JOIN finished f ON f."id" = i."generationId"
       WHERE i."createdAt" > now() - interval '10 minutes' GROUP BY f."model"),
    after AS (
      -- in order of start, each span counts only past the latest end before it: the union's length
      SELECT "model", s, e, max(e) OVER (PARTITION BY "model" ORDER BY s, e ROWS UNBOUNDED PRECEDING EXCLUDE CURRENT ROW) AS before
        FROM finished),
    busy AS (
      SELECT "model", sum(extract(epoch FROM greatest(e - greatest(s, coalesce(before, s)), interval '0'))) AS seconds
        FROM after GROUP BY "model")
    SELECT m."name" AS "model", coalesce(l.n, 0) AS "workers", coalesce(r.n, 0) AS "runningImages",
           CASE WHEN b.seconds > 0 THEN (d.n / b.seconds)::float8 END AS "imagesPerSecond"
      FROM "Model" m LEFT JOIN live l ON l."model" = m."name" LEFT JOIN running r ON r."model" = m."name"
           LEFT JOIN drawn d ON d."model" = m."name" LEFT JOIN busy b ON b."model" = m."name"`;
}
