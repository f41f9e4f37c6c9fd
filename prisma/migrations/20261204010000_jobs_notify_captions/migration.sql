-- The jobs channel's NOTIFY at admission carries the request's model and captions as JSON ({"id", "model",
-- "captions"}) where that fits in a NOTIFY's 8,000 bytes (else the id alone, as before): an idle worker of that
-- model starts the captions' phi(t) while its claim is in the database (src/gpu-worker/worker.ts). The rest of
-- ganvas_admit is as the admission migration made it.
CREATE OR REPLACE FUNCTION "ganvas_admit"(
  p_lock INTEGER, p_owner UUID, p_per_minute INTEGER, p_queued INTEGER, p_per_day INTEGER,
  p_kind "GenerationKind", p_captions TEXT[], p_seed INTEGER, p_end_seed INTEGER, p_model TEXT,
  p_image_count INTEGER, p_style_image UUID, p_style_png BYTEA, p_webhook_url TEXT,
  p_webhook_events TEXT[], p_generation_channel TEXT, p_jobs_channel TEXT)
RETURNS TABLE ("generationId" UUID, "createdAt" TIMESTAMPTZ, "refusal" TEXT, "used" INTEGER, "allowed" INTEGER,
               "retryAt" TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_id UUID := gen_random_uuid();
  v_created TIMESTAMPTZ;
  v_hint TEXT;
  r RECORD;
BEGIN
  PERFORM pg_advisory_xact_lock(p_lock, hashtext(coalesce(p_owner::TEXT, '')));
  FOR r IN SELECT * FROM "ganvas_quota_refusal"(p_owner, p_image_count, p_per_minute, p_queued, p_per_day) LOOP
    RETURN QUERY SELECT NULL::UUID, NULL::TIMESTAMPTZ, r."refusal", r."used", r."allowed", r."retryAt";
    RETURN;
  END LOOP;
  INSERT INTO "Generation" ("id", "kind", "captions", "seed", "endSeed", "model", "imageCount", "styleImageId",
                            "stylePng", "apiKeyId", "webhookUrl", "webhookEvents")
  VALUES (v_id, p_kind, p_captions, p_seed, p_end_seed, p_model, p_image_count, p_style_image, p_style_png,
          p_owner, p_webhook_url, coalesce(p_webhook_events, '{}')::"WebhookEvent"[])
  RETURNING "createdAt" INTO v_created;
  INSERT INTO "QuotaUse" ("apiKeyId", "images") VALUES (p_owner, p_image_count);
  DELETE FROM "QuotaUse" q
   WHERE (q."apiKeyId" = p_owner OR (p_owner IS NULL AND q."apiKeyId" IS NULL))
     AND q."createdAt" < now() - interval '1 day';
  INSERT INTO "Job" ("generationId") VALUES (v_id);
  v_hint := json_build_object('id', v_id, 'model', p_model, 'captions', p_captions)::TEXT;
  PERFORM pg_notify(p_jobs_channel, CASE WHEN octet_length(v_hint) < 8000 THEN v_hint ELSE v_id::TEXT END);
  PERFORM pg_notify(p_generation_channel, v_id::TEXT);
  RETURN QUERY SELECT v_id, v_created, NULL::TEXT, NULL::INTEGER, NULL::INTEGER, NULL::TIMESTAMPTZ;
END $$;
