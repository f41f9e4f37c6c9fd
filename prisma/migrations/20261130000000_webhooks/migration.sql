-- CreateEnum
CREATE TYPE "WebhookEvent" AS ENUM ('STARTED', 'IMAGE', 'COMPLETED');

-- CreateEnum
CREATE TYPE "DeliveryStatus" AS ENUM ('PENDING', 'DELIVERED', 'FAILED');

-- AlterTable
ALTER TABLE "Generation" ADD COLUMN     "webhookUrl" TEXT,
ADD COLUMN     "webhookEvents" "WebhookEvent"[];

-- AlterTable: a signing secret for every key, existing ones included (two random UUIDs: 244 random bits)
ALTER TABLE "ApiKey" ADD COLUMN     "webhookSecret" TEXT,
ADD COLUMN     "previousWebhookSecret" TEXT,
ADD COLUMN     "webhookSecretRotatedAt" TIMESTAMPTZ(3);
UPDATE "ApiKey" SET "webhookSecret" = 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64');
ALTER TABLE "ApiKey" ALTER COLUMN "webhookSecret" SET NOT NULL;

-- CreateTable
CREATE TABLE "Setting" (
    "name" TEXT NOT NULL,
    "value" TEXT NOT NULL,

    CONSTRAINT "Setting_pkey" PRIMARY KEY ("name")
);
INSERT INTO "Setting" ("name", "value") VALUES ('openWebhookSecret', 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64'));

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "generationId" UUID NOT NULL,
    "event" "WebhookEvent" NOT NULL,
    "imageId" UUID,
    "status" "DeliveryStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lockedUntil" TIMESTAMPTZ(3),
    "lastStatusCode" INTEGER,
    "lastError" TEXT,
    "body" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" TIMESTAMPTZ(3),

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "WebhookDelivery_status_nextAttemptAt_idx" ON "WebhookDelivery"("status", "nextAttemptAt");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_seq_key" ON "WebhookDelivery"("seq");

-- CreateIndex
CREATE INDEX "WebhookDelivery_generationId_seq_idx" ON "WebhookDelivery"("generationId", "seq");

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_generationId_fkey" FOREIGN KEY ("generationId") REFERENCES "Generation"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Webhook messages, made in the transaction of the change they announce, whichever code makes it (worker,
-- cancel, a job that used its attempts): STARTED when a generation starts running, COMPLETED when it ends
-- (SUCCEEDED, FAILED or CANCELED), IMAGE for each stored image; only for the events the generation asked for.
CREATE FUNCTION "webhook_on_status"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."webhookUrl" IS NOT NULL AND NEW."status" IS DISTINCT FROM OLD."status" THEN
    IF NEW."status" = 'RUNNING' AND 'STARTED' = ANY(NEW."webhookEvents") THEN
      INSERT INTO "WebhookDelivery" ("generationId", "event") VALUES (NEW."id", 'STARTED');
    ELSIF NEW."status" IN ('SUCCEEDED', 'FAILED', 'CANCELED') AND 'COMPLETED' = ANY(NEW."webhookEvents") THEN
      INSERT INTO "WebhookDelivery" ("generationId", "event") VALUES (NEW."id", 'COMPLETED');
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER "Generation_webhook" AFTER UPDATE OF "status" ON "Generation"
  FOR EACH ROW EXECUTE FUNCTION "webhook_on_status"();

CREATE FUNCTION "webhook_on_image"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "WebhookDelivery" ("generationId", "event", "imageId")
  SELECT g."id", 'IMAGE', NEW."id" FROM "Generation" g
   WHERE g."id" = NEW."generationId" AND g."webhookUrl" IS NOT NULL AND 'IMAGE' = ANY(g."webhookEvents");
  RETURN NULL;
END $$;
CREATE TRIGGER "Image_webhook" AFTER INSERT ON "Image"
  FOR EACH ROW EXECUTE FUNCTION "webhook_on_image"();
