-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "imagesPerDay" INTEGER,
ADD COLUMN     "queueLimit" INTEGER,
ADD COLUMN     "rateLimitPerMinute" INTEGER;

-- CreateIndex: the recent drawing rate (queue estimates) reads the last minutes' images
CREATE INDEX "Image_createdAt_idx" ON "Image"("createdAt");
