-- CreateTable
CREATE TABLE "Model" (
    "name" TEXT NOT NULL,
    "imageSize" INTEGER NOT NULL,
    "variant" TEXT NOT NULL,
    "trainingSteps" INTEGER NOT NULL,
    "untrained" BOOLEAN NOT NULL,
    "summary" TEXT NOT NULL,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Model_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "ModelWorker" (
    "model" TEXT NOT NULL,
    "workerId" TEXT NOT NULL,
    "heartbeatAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ModelWorker_pkey" PRIMARY KEY ("model","workerId")
);

-- AddForeignKey
ALTER TABLE "ModelWorker" ADD CONSTRAINT "ModelWorker_model_fkey" FOREIGN KEY ("model") REFERENCES "Model"("name") ON DELETE CASCADE ON UPDATE CASCADE;
