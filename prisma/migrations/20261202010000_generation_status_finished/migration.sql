-- The queue's watch reads, on every change, the running generations (by status) and those finished in the
-- last 10 minutes (by finishedAt) of every model (src/queue/queue.ts modelLoads): without these indexes each
-- read scanned every generation ever made.
CREATE INDEX "Generation_status_idx" ON "Generation"("status");
CREATE INDEX "Generation_finishedAt_idx" ON "Generation"("finishedAt");
