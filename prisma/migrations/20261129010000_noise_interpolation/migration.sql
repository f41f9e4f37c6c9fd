-- AlterEnum
ALTER TYPE "GenerationKind" ADD VALUE 'NOISE_INTERPOLATION';

-- AlterTable
ALTER TABLE "Generation" ADD COLUMN     "endSeed" INTEGER;
