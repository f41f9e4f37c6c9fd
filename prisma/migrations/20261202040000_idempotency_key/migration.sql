-- A creating request may carry an idempotency key: sent again with the same key by the same API key (a retry
-- after a timeout), it answers the generation the first one made, and makes and counts nothing more. The check
-- runs under the owner's advisory lock, as admission does, so two requests with one key at once make one
-- generation; the unique index is the backstop, and what finds a key's earlier request (open mode's owner, NULL,
-- as the zero UUID: NULLS NOT DISTINCT would need Postgres 15). The 17-argument ganvas_admit stays, for API
-- instances older than this migration.
ALTER TABLE "Generation" ADD COLUMN "idempotencyKey" TEXT;
CREATE UNIQUE INDEX "Generation_owner_idempotencyKey_key"
  ON "Generation" (coalesce("apiKeyId", '00000000-0000-0000-0000-000000000000'::uuid), "idempotencyKey")
  WHERE "idempotencyKey" IS NOT NULL;

CREATE FUNCTION "ganvas_admit"(
  p_lock INTEGER, p_owner UUID, p_per_minute INTEGER, p_queued INTEGER, p_per_day INTEGER,
  p_kind "GenerationKind", p_captions TEXT[], p_seed INTEGER, p_end_seed INTEGER, p_model TEXT,
  p_image_count INTEGER, p_style_image UUID, p_style_png BYTEA, p_webhook_url TEXT,
  p_webhook_events TEXT[], p_generation_channel TEXT, p_jobs_channel TEXT, p_idempotency_key TEXT)
RETURNS TABLE ("generationId" UUID, "createdAt" TIMESTAMPTZ, "refusal" TEXT, "used" INTEGER, "allowed" INTEGER,
               "retryAt" TIMESTAMPTZ, "existing" BOOLEAN)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  r RECORD;
BEGIN
  IF p_idempotency_key IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(p_lock, hashtext(coalesce(p_owner::TEXT, '')));
    FOR r IN SELECT g."id", g."createdAt" FROM "Generation" g
              WHERE coalesce(g."apiKeyId", '00000000-0000-0000-0000-000000000000'::uuid)
                    = coalesce(p_owner, '00000000-0000-0000-0000-000000000000'::uuid)
                AND g."idempotencyKey" = p_idempotency_key LOOP
      RETURN QUERY SELECT r."id", r."createdAt", NULL::TEXT, NULL::INTEGER, NULL::INTEGER, NULL::TIMESTAMPTZ, TRUE;
      RETURN;
    END LOOP;
  END IF;
  -- the same lock again (held to the end of the transaction either way), the quota, the insert, the job, NOTIFY
  FOR r IN SELECT * FROM "ganvas_admit"(p_lock, p_owner, p_per_minute, p_queued, p_per_day, p_kind, p_captions,
                                        p_seed, p_end_seed, p_model, p_image_count, p_style_image, p_style_png,
                                        p_webhook_url, p_webhook_events, p_generation_channel, p_jobs_channel) LOOP
    IF r."generationId" IS NOT NULL AND p_idempotency_key IS NOT NULL THEN
      UPDATE "Generation" SET "idempotencyKey" = p_idempotency_key WHERE "id" = r."generationId";
    END IF;
    RETURN QUERY SELECT r."generationId", r."createdAt", r."refusal", r."used", r."allowed", r."retryAt", FALSE;
  END LOOP;
END $$;
