-- A request whose key was revoked after it was authenticated is not admitted: the quota check (which
-- ganvas_admit calls under the owner's advisory lock) first refuses an owner key that is revoked or gone.
-- key:revoke takes the same lock (src/auth/keys.ts), so a request is either admitted before the revoke,
-- and canceled by it, or sees the key revoked.
ALTER FUNCTION "ganvas_quota_refusal"(UUID, INTEGER, INTEGER, INTEGER, INTEGER) RENAME TO "ganvas_limit_refusal";

CREATE FUNCTION "ganvas_quota_refusal"(
  p_owner UUID, p_images INTEGER, p_per_minute INTEGER, p_queued INTEGER, p_per_day INTEGER)
RETURNS TABLE ("refusal" TEXT, "used" INTEGER, "allowed" INTEGER, "retryAt" TIMESTAMPTZ)
LANGUAGE plpgsql AS $$
BEGIN
  IF p_owner IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM "ApiKey" k WHERE k."id" = p_owner AND k."revokedAt" IS NULL) THEN
    RETURN QUERY SELECT 'revoked'::TEXT, 0, 0, NULL::TIMESTAMPTZ;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM "ganvas_limit_refusal"(p_owner, p_images, p_per_minute, p_queued, p_per_day);
END $$;
