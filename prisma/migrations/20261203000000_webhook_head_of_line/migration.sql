-- A generation's messages go out one at a time, in order (src/webhooks/deliveries.ts claimDeliveries). Which one
-- may go is kept in the rows: "behind" is true while an earlier message of the same generation is still PENDING,
-- and "dueAt" is when a message may be claimed (null once delivered or given up, and while behind). A claim reads
-- the due ones by the index on "dueAt", not every message waiting behind another: a key whose receiver is down
-- holds up to 2,000 of those, and a claim (every half second in each API process) read and ranked all of them
-- (docs/scaling.md). A column of its own, not a partial index on "nextAttemptAt": the planner keeps statistics
-- for it, and reads few rows as few.
ALTER TABLE "WebhookDelivery" ADD COLUMN "behind" BOOLEAN NOT NULL DEFAULT false;
UPDATE "WebhookDelivery" d SET "behind" = true
 WHERE d."status" = 'PENDING'
   AND EXISTS (SELECT 1 FROM "WebhookDelivery" e
                WHERE e."generationId" = d."generationId" AND e."status" = 'PENDING' AND e."seq" < d."seq");
ALTER TABLE "WebhookDelivery" ADD COLUMN "dueAt" TIMESTAMPTZ(3)
  GENERATED ALWAYS AS (CASE WHEN "status" = 'PENDING' AND NOT "behind" THEN "nextAttemptAt" END) STORED;

DROP INDEX "WebhookDelivery_status_nextAttemptAt_idx";
CREATE INDEX "WebhookDelivery_dueAt_idx" ON "WebhookDelivery" ("dueAt") WHERE "dueAt" IS NOT NULL;

-- A new message waits behind the last PENDING one of its generation, which it locks FOR SHARE: a transaction
-- ending that one at the same time either commits first (then the new one is not behind), or waits for the new
-- one to commit, and then lets it go (webhook_next).
CREATE FUNCTION "webhook_behind"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM "WebhookDelivery"
    WHERE "generationId" = NEW."generationId" AND "status" = 'PENDING'
    ORDER BY "seq" DESC LIMIT 1 FOR SHARE;
  NEW."behind" := FOUND;
  RETURN NEW;
END $$;
CREATE TRIGGER "WebhookDelivery_behind" BEFORE INSERT ON "WebhookDelivery"
  FOR EACH ROW EXECUTE FUNCTION "webhook_behind"();

-- A message ended (delivered, or given up): the next PENDING one of its generation may go.
CREATE FUNCTION "webhook_next"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "WebhookDelivery" SET "behind" = false
   WHERE "id" = (SELECT "id" FROM "WebhookDelivery"
                  WHERE "generationId" = NEW."generationId" AND "status" = 'PENDING' ORDER BY "seq" LIMIT 1)
     AND "behind";
  RETURN NULL;
END $$;
CREATE TRIGGER "WebhookDelivery_next" AFTER UPDATE OF "status" ON "WebhookDelivery"
  FOR EACH ROW WHEN (OLD."status" = 'PENDING' AND NEW."status" <> 'PENDING') EXECUTE FUNCTION "webhook_next"();
