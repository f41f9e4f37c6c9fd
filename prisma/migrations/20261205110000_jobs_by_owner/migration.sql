-- A job carries its generation's owner (the zero UUID for open mode's) and model, set by a trigger from the
-- generation as the job is made, and an index orders the jobs of each model and owner. A claim then reads, for each
-- owner with jobs of its models (one index probe each), that owner's first jobs only (src/queue/queue.ts): before,
-- it ranked every job of the queue, and its Postgres CPU grew with the queue (3 ms with 1,000 jobs queued, 32 ms with
-- 10,000, 258 ms with 100,000: docs/benchmarks.md, session 42), on every claim of every worker.
ALTER TABLE "Job" ADD COLUMN "owner" UUID, ADD COLUMN "model" TEXT;
UPDATE "Job" j SET "owner" = coalesce(g."apiKeyId", '00000000-0000-0000-0000-000000000000'::uuid), "model" = g."model"
  FROM "Generation" g WHERE g."id" = j."generationId";
ALTER TABLE "Job" ALTER COLUMN "owner" SET NOT NULL, ALTER COLUMN "model" SET NOT NULL;

CREATE FUNCTION "ganvas_job_of_generation"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT coalesce(g."apiKeyId", '00000000-0000-0000-0000-000000000000'::uuid), g."model"
    INTO NEW."owner", NEW."model" FROM "Generation" g WHERE g."id" = NEW."generationId";
  IF NOT FOUND THEN -- as the foreign key would say it
    RAISE foreign_key_violation USING MESSAGE = format('no generation %s for a job', NEW."generationId");
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER "Job_of_generation" BEFORE INSERT ON "Job"
  FOR EACH ROW EXECUTE FUNCTION "ganvas_job_of_generation"();

CREATE INDEX "Job_model_owner_id_idx" ON "Job" ("model", "owner", "id");
