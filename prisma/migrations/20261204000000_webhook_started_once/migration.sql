-- A generation has one generation.started message: a worker shutting down hands back a generation its claim had
-- started (src/queue/queue.ts release: QUEUED again, and its STARTED message deleted if no attempt to send it was
-- made), and the next start's message is not made where one was already sent or is on its way. Named to run before
-- WebhookDelivery_behind (a table's BEFORE triggers run in name order), which need not lock for a row not made.
CREATE FUNCTION "webhook_started_once"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."generationId" = NEW."generationId" AND d."event" = 'STARTED') THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER "WebhookDelivery_at_most_one_started" BEFORE INSERT ON "WebhookDelivery"
  FOR EACH ROW WHEN (NEW."event" = 'STARTED') EXECUTE FUNCTION "webhook_started_once"();
