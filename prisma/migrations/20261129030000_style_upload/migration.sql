-- AlterTable
ALTER TABLE "Generation" ADD COLUMN     "stylePng" BYTEA;
