-- How many characters of a caption a model reads (its text encoder's length): the catalog answers it
-- (ModelInfo.captionCharacters). Models registered before this read 201, the paper's length; each
-- registration writes its own.
ALTER TABLE "Model" ADD COLUMN "captionCharacters" INTEGER NOT NULL DEFAULT 201;
