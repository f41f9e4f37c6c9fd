-- A request for more images than its key's whole day allows can never be admitted: it is refused as such
-- ('images', BAD_USER_INPUT) before the limits that pass (the requests a minute, the queue), so a caller is not
-- told RATE_LIMITED, to wait and send it again, for a request that waiting cannot help.
ALTER FUNCTION "ganvas_limit_refusal"(UUID, INTEGER, INTEGER, INTEGER, INTEGER) RENAME TO "ganvas_window_refusal";

CREATE FUNCTION "ganvas_limit_refusal"(
  p_owner UUID, p_images INTEGER, p_per_minute INTEGER, p_queued INTEGER, p_per_day INTEGER)
RETURNS TABLE ("refusal" TEXT, "used" INTEGER, "allowed" INTEGER, "retryAt" TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
DECLARE
  v_day INTEGER;
BEGIN
  SELECT coalesce(k."imagesPerDay", p_per_day) INTO v_day FROM (SELECT 1) o
    LEFT JOIN "ApiKey" k ON k."id" = p_owner;
  IF p_images > v_day THEN
    RETURN QUERY SELECT 'images'::TEXT, p_images, v_day, NULL::TIMESTAMPTZ;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM "ganvas_window_refusal"(p_owner, p_images, p_per_minute, p_queued, p_per_day);
END $$;
