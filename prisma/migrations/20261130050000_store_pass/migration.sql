-- A worker's pass stored in one round trip (src/gpu-worker/store.ts storePass): one statement, one
-- transaction. Its generations are locked before its jobs (as cancel and delete lock them: no deadlock with
-- either); a generation no longer RUNNING ('canceled') or whose job p_worker no longer holds ('lost') keeps
-- nothing of the pass; the others get their images (an earlier attempt's duplicates skipped), their progress,
-- or, when the pass ends them ('finished'), SUCCEEDED with their jobs removed; each stored one gets one
-- NOTIFY. Items are parallel arrays: one element per generation, and one per image.
CREATE FUNCTION "ganvas_store_pass"(
  p_worker TEXT, p_generations UUID[], p_jobs BIGINT[], p_finish BOOLEAN[],
  p_image_generations UUID[], p_indexes INTEGER[], p_widths INTEGER[], p_heights INTEGER[], p_captions TEXT[],
  p_seeds INTEGER[], p_mixes DOUBLE PRECISION[], p_tokens TEXT[], p_pngs BYTEA[], p_channel TEXT)
RETURNS TABLE ("generationId" UUID, "outcome" TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_running UUID[];
  v_held BIGINT[];
  v_storing UUID[];
  v_ending UUID[];
BEGIN
  SELECT coalesce(array_agg(r."id"), '{}') INTO v_running FROM (
    SELECT g."id" FROM "Generation" g WHERE g."id" = ANY(p_generations) AND g."status" = 'RUNNING'
     ORDER BY g."id" FOR UPDATE) r;
  SELECT coalesce(array_agg(r."id"), '{}') INTO v_held FROM (
    SELECT j."id" FROM "Job" j WHERE j."id" = ANY(p_jobs) AND j."lockedBy" = p_worker
     ORDER BY j."id" FOR UPDATE) r;
  SELECT coalesce(array_agg(i.g), '{}'), coalesce(array_agg(i.g) FILTER (WHERE i.f), '{}')
    INTO v_storing, v_ending
    FROM unnest(p_generations, p_jobs, p_finish) AS i(g, j, f)
   WHERE i.g = ANY(v_running) AND i.j = ANY(v_held);

  INSERT INTO "Image" ("id", "generationId", "index", "width", "height", "caption", "seed", "mix", "token", "png")
  SELECT gen_random_uuid(), x.g, x.n, x.w, x.h, x.c, x.s, x.m, x.t, x.p
    FROM unnest(p_image_generations, p_indexes, p_widths, p_heights, p_captions, p_seeds, p_mixes, p_tokens, p_pngs)
      AS x(g, n, w, h, c, s, m, t, p)
   WHERE x.g = ANY(v_storing)
  ON CONFLICT ("generationId", "index") DO NOTHING;
  UPDATE "Generation" g
     SET "progress" = (SELECT count(*) FROM "Image" i WHERE i."generationId" = g."id")::FLOAT8 / g."imageCount"
   WHERE g."id" = ANY(v_storing) AND NOT g."id" = ANY(v_ending);
  UPDATE "Generation" g SET "status" = 'SUCCEEDED', "progress" = 1, "finishedAt" = now()
   WHERE g."id" = ANY(v_ending);
  DELETE FROM "Job" j USING unnest(p_generations, p_jobs) AS i(g, jid)
   WHERE j."id" = i.jid AND i.g = ANY(v_ending);
  PERFORM pg_notify(p_channel, s::TEXT) FROM unnest(v_storing) AS s;

  RETURN QUERY
  SELECT i.g, CASE WHEN NOT i.g = ANY(v_running) THEN 'canceled'
                   WHEN NOT i.j = ANY(v_held) THEN 'lost'
                   WHEN i.f THEN 'finished' ELSE 'stored' END
    FROM unnest(p_generations, p_jobs, p_finish) AS i(g, j, f);
END $$;
