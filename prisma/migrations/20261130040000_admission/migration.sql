-- A request's admission in one round trip (src/generations/admission.ts): under the owner's advisory lock,
-- its quotas are counted and, if they allow it, the generation, its quota use and its job are written and
-- the API instances and workers notified, all in the statement's one transaction. The rules and messages
-- stay in TypeScript; these functions count and write.

-- Why `p_owner` may not ask for `p_images` more images now: no row when it may; else one row naming the
-- limit that refuses ('rate', 'queue', 'images' (more than a day allows at all), 'daily'), what is used
-- against it, the limit, and when room comes back (null: when queued work finishes). The key's own limits
-- (npm run key:limits) override the server's, passed in. Each statement reads what committed before it
-- started, so, called after the owner's lock is taken, it counts every request admitted before.
CREATE FUNCTION "ganvas_quota_refusal"(
  p_owner UUID, p_images INTEGER, p_per_minute INTEGER, p_queued INTEGER, p_per_day INTEGER)
RETURNS TABLE ("refusal" TEXT, "used" INTEGER, "allowed" INTEGER, "retryAt" TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_minute INTEGER; v_queued INTEGER; v_day INTEGER;
  v_used INTEGER; v_oldest TIMESTAMPTZ; v_retry TIMESTAMPTZ;
BEGIN
  SELECT k."rateLimitPerMinute", k."queueLimit", k."imagesPerDay" INTO v_minute, v_queued, v_day
    FROM "ApiKey" k WHERE k."id" = p_owner;
  v_minute := coalesce(v_minute, p_per_minute);
  v_queued := coalesce(v_queued, p_queued);
  v_day := coalesce(v_day, p_per_day);

  SELECT count(*), min(u."createdAt") INTO v_used, v_oldest FROM (
    SELECT q."createdAt" FROM "QuotaUse" q
     WHERE (q."apiKeyId" = p_owner OR (p_owner IS NULL AND q."apiKeyId" IS NULL))
       AND q."createdAt" > now() - interval '1 minute'
     ORDER BY q."createdAt" LIMIT v_minute) u;
  IF v_used >= v_minute THEN
    RETURN QUERY SELECT 'rate', v_used, v_minute, coalesce(v_oldest, now()) + interval '1 minute';
    RETURN;
  END IF;

  SELECT count(*) INTO v_used FROM "Generation" g
   WHERE (g."apiKeyId" = p_owner OR (p_owner IS NULL AND g."apiKeyId" IS NULL))
     AND g."status" IN ('QUEUED', 'RUNNING');
  IF v_used >= v_queued THEN
    RETURN QUERY SELECT 'queue', v_used, v_queued, NULL::TIMESTAMPTZ;
    RETURN;
  END IF;

  IF v_day IS NULL THEN RETURN; END IF;
  IF p_images > v_day THEN
    RETURN QUERY SELECT 'images', p_images, v_day, NULL::TIMESTAMPTZ;
    RETURN;
  END IF;
  -- the day's total and when enough of it leaves the window (room comes back as the oldest of the last 24
  -- hours' requests leave it), read in one statement: one snapshot for both
  WITH u AS (
    SELECT q."id", q."createdAt", q."images" FROM "QuotaUse" q
     WHERE (q."apiKeyId" = p_owner OR (p_owner IS NULL AND q."apiKeyId" IS NULL))
       AND q."createdAt" > now() - interval '1 day'),
  total AS (SELECT coalesce(sum(u."images"), 0)::INTEGER AS n FROM u)
  SELECT total.n, (
    SELECT t."createdAt" + interval '1 day' FROM (
      SELECT u."createdAt", sum(u."images") OVER (ORDER BY u."createdAt", u."id") AS "freed" FROM u) t
     WHERE t."freed" >= total.n + p_images - v_day
     ORDER BY t."createdAt" LIMIT 1)
    INTO v_used, v_retry FROM total;
  IF v_used + p_images <= v_day THEN RETURN; END IF;
  RETURN QUERY SELECT 'daily', v_used, v_day, v_retry;
END $$;

-- Admits one request: the owner's advisory lock (key p_lock, hashtext of the owner; concurrent requests of
-- one owner count and insert one at a time), its quotas, then the generation, its quota use (and the owner's
-- uses older than a day removed), its job and both NOTIFYs (sent at commit). Returns the new generation's
-- id and creation time (the rest of its row is what was passed and the column defaults), or the refusal as
-- ganvas_quota_refusal gives it (nothing written). The webhook events come as text (PGlite has no array
-- serializer for an enum created after it started).
CREATE FUNCTION "ganvas_admit"(
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
  PERFORM pg_notify(p_jobs_channel, v_id::TEXT);
  PERFORM pg_notify(p_generation_channel, v_id::TEXT);
  RETURN QUERY SELECT v_id, v_created, NULL::TEXT, NULL::INTEGER, NULL::INTEGER, NULL::TIMESTAMPTZ;
END $$;
