-- generation.started is sent once a generation: a worker shutting down hands back a generation its claim had
-- started (src/queue/queue.ts release: QUEUED again, and its STARTED message deleted if no attempt to send it was
-- made), and the next start makes no second message where one was already sent or is on its way.
CREATE OR REPLACE FUNCTION "webhook_on_status"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."webhookUrl" IS NOT NULL AND NEW."status" IS DISTINCT FROM OLD."status" THEN
    IF NEW."status" = 'RUNNING' AND 'STARTED' = ANY(NEW."webhookEvents")
       AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."generationId" = NEW."id" AND d."event" = 'STARTED') THEN
      INSERT INTO "WebhookDelivery" ("generationId", "event") VALUES (NEW."id", 'STARTED');
    ELSIF NEW."status" IN ('SUCCEEDED', 'FAILED', 'CANCELED') AND 'COMPLETED' = ANY(NEW."webhookEvents") THEN
      INSERT INTO "WebhookDelivery" ("generationId", "event") VALUES (NEW."id", 'COMPLETED');
    END IF;
  END IF;
  RETURN NULL;
END $$;
