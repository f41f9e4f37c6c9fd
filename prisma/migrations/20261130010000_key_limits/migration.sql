-- AlterTable
ALTER TABLE "ApiKey" ADD COLUMN     "imagesPerDay" INTEGER,
ADD COLUMN     "queueLimit" INTEGER,
ADD COLUMN     "rateLimitPerMinute" INTEGER;
