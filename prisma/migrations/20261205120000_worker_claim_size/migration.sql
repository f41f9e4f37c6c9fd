-- A live worker says how many jobs it claims at most (WORKER_MAX_JOBS). A claim reads as many places of the queue as
-- the claims at the same moment may be taking besides its own (src/queue/queue.ts), so that it finds its jobs past
-- theirs, locked and not marked yet, whatever each worker's claim size. Null: a worker older than this migration
-- (counted as claiming as many as the claim that reads it).
ALTER TABLE "ModelWorker" ADD COLUMN "maxJobs" INTEGER;
