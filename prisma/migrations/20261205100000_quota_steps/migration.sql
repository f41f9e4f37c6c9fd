-- A key's use is counted in steps, not requests: one row per owner and second (for the requests-a-minute window)
-- and one per owner and minute (for the images-a-day window), each holding how many requests and images were
-- admitted in it. Counting a window then reads at most 61 or 1,441 rows whatever the key's volume; with a row a
-- request it read every request of the window, and an admission's Postgres CPU grew with them (0.8 ms with none,
-- 7.2 ms with 20,000 in the minute, 32 ms with 20,000 in the day: docs/benchmarks.md, session 42), under the owner's
-- lock, so one busy key's admissions were capped at a few dozen a second. A step counts until its end has left the
-- window: room comes back at most a second (a minute, for the day) later than a minute (a day) after a request.
--
-- "QuotaUse" stays, no longer written: API instances older than this migration read it for the `quota` query (their
-- answers count no new request until they are replaced; their admissions count in steps, the functions being changed
-- in place). Drop it once none runs. "Generation" is locked first, as an admission locks it before the quota's
-- table (the other order deadlocks with them): admissions under way finish before this runs and their uses are
-- carried over; one that reaches "Generation" meanwhile waits, and goes on as the function was when it began
-- (counted in "QuotaUse": the few requests of the upgrade's moment are not counted in steps).
LOCK TABLE "Generation" IN SHARE MODE;

CREATE TABLE "QuotaStep" (
    "owner" UUID NOT NULL,          -- the API key's id; the zero UUID for open mode's owner (NULL elsewhere)
    "seconds" INTEGER NOT NULL,     -- how long the step is: 1 or 60
    "at" TIMESTAMPTZ NOT NULL,      -- when it starts
    "requests" INTEGER NOT NULL,
    "images" INTEGER NOT NULL,

    CONSTRAINT "QuotaStep_pkey" PRIMARY KEY ("owner", "seconds", "at")
);

INSERT INTO "QuotaStep" ("owner", "seconds", "at", "requests", "images")
SELECT coalesce("apiKeyId", '00000000-0000-0000-0000-000000000000'::uuid), 60, date_trunc('minute', "createdAt"),
       count(*), sum("images")
  FROM "QuotaUse" WHERE "createdAt" > now() - interval '1 day 1 minute' GROUP BY 1, 3
UNION ALL
SELECT coalesce("apiKeyId", '00000000-0000-0000-0000-000000000000'::uuid), 1, date_trunc('second', "createdAt"),
       count(*), sum("images")
  FROM "QuotaUse" WHERE "createdAt" > now() - interval '61 seconds' GROUP BY 1, 3;

-- the queue limit's count reads the owner's waiting generations only
CREATE INDEX "Generation_apiKeyId_waiting_idx" ON "Generation" ("apiKeyId") WHERE "status" IN ('QUEUED', 'RUNNING');

-- A window's use by the owner's steps of `p_seconds` (its requests, or its images) and, where `p_asking` more would
-- pass `p_allowed` (not asked where that is NULL), when enough of it leaves the window: when the step that frees the
-- last of what is needed ends, plus the window. One statement, one snapshot for both.
CREATE FUNCTION "ganvas_window_use"(
  p_owner UUID, p_seconds INTEGER, p_window INTERVAL, p_images BOOLEAN, p_asking INTEGER, p_allowed INTEGER)
RETURNS TABLE ("used" INTEGER, "retryAt" TIMESTAMPTZ)
LANGUAGE sql STABLE AS $$
  WITH s AS (
    SELECT q."at", CASE WHEN p_images THEN q."images" ELSE q."requests" END AS n FROM "QuotaStep" q
     WHERE q."owner" = p_owner AND q."seconds" = p_seconds
       AND q."at" > now() - p_window - make_interval(secs => p_seconds)),
  total AS (SELECT coalesce(sum(s.n), 0)::INTEGER AS n FROM s)
  SELECT total.n, CASE WHEN total.n + p_asking > p_allowed THEN (
    SELECT t."at" + make_interval(secs => p_seconds) + p_window FROM (
      SELECT s."at", sum(s.n) OVER (ORDER BY s."at") AS "freed" FROM s) t
     WHERE t."freed" >= total.n + p_asking - p_allowed
     ORDER BY t."at" LIMIT 1) END
    FROM total
$$;

-- The windows' counts (the admission migration's, same arguments and answers) from the steps.
CREATE OR REPLACE FUNCTION "ganvas_window_refusal"(
  p_owner UUID, p_images INTEGER, p_per_minute INTEGER, p_queued INTEGER, p_per_day INTEGER)
RETURNS TABLE ("refusal" TEXT, "used" INTEGER, "allowed" INTEGER, "retryAt" TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_owner UUID := coalesce(p_owner, '00000000-0000-0000-0000-000000000000'::uuid);
  v_minute INTEGER; v_queued INTEGER; v_day INTEGER;
  v_used INTEGER; v_retry TIMESTAMPTZ;
BEGIN
  SELECT k."rateLimitPerMinute", k."queueLimit", k."imagesPerDay" INTO v_minute, v_queued, v_day
    FROM "ApiKey" k WHERE k."id" = p_owner;
  v_minute := coalesce(v_minute, p_per_minute);
  v_queued := coalesce(v_queued, p_queued);
  v_day := coalesce(v_day, p_per_day);

  -- the minute's requests, and when enough of them leave it for one more (one snapshot for both)
  SELECT * INTO v_used, v_retry FROM "ganvas_window_use"(v_owner, 1, interval '1 minute', false, 1, v_minute);
  IF v_used >= v_minute THEN
    RETURN QUERY SELECT 'rate', v_used, v_minute, v_retry;
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
  SELECT * INTO v_used, v_retry FROM "ganvas_window_use"(v_owner, 60, interval '1 day', true, p_images, v_day);
  IF v_used + p_images <= v_day THEN RETURN; END IF;
  RETURN QUERY SELECT 'daily', v_used, v_day, v_retry;
END $$;

-- Admission (the jobs_notify_captions migration's, same arguments and answers) counts the request in its steps and
-- drops the owner's steps that have left their windows.
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
  v_owner UUID := coalesce(p_owner, '00000000-0000-0000-0000-000000000000'::uuid);
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
  INSERT INTO "QuotaStep" AS q ("owner", "seconds", "at", "requests", "images")
  VALUES (v_owner, 1, date_trunc('second', now()), 1, p_image_count),
         (v_owner, 60, date_trunc('minute', now()), 1, p_image_count)
  ON CONFLICT ("owner", "seconds", "at")
  DO UPDATE SET "requests" = q."requests" + 1, "images" = q."images" + excluded."images";
  DELETE FROM "QuotaStep" q
   WHERE q."owner" = v_owner
     AND ((q."seconds" = 1 AND q."at" <= now() - interval '61 seconds')
          OR (q."seconds" = 60 AND q."at" <= now() - interval '1 day 1 minute'));
  INSERT INTO "Job" ("generationId") VALUES (v_id);
  v_hint := json_build_object('id', v_id, 'model', p_model, 'captions', p_captions)::TEXT;
  PERFORM pg_notify(p_jobs_channel, CASE WHEN octet_length(v_hint) < 8000 THEN v_hint ELSE v_id::TEXT END);
  PERFORM pg_notify(p_generation_channel, v_id::TEXT);
  RETURN QUERY SELECT v_id, v_created, NULL::TEXT, NULL::INTEGER, NULL::INTEGER, NULL::TIMESTAMPTZ;
END $$;
