-- CreateTable
CREATE TABLE "QuotaUse" (
    "id" BIGSERIAL NOT NULL,
    "apiKeyId" UUID,
    "images" INTEGER NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "QuotaUse_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "QuotaUse_apiKeyId_createdAt_idx" ON "QuotaUse"("apiKeyId", "createdAt");

-- the last day's requests count from the start
INSERT INTO "QuotaUse" ("apiKeyId", "images", "createdAt")
SELECT "apiKeyId", "imageCount", "createdAt" FROM "Generation" WHERE "createdAt" > now() - interval '1 day';
