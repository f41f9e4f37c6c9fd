-- The webhook messages on their way (claimed, not yet recorded): each claim counts them per API key
-- (src/webhooks/deliveries.ts claimDeliveries). A delivery's lease is cleared when its attempt is recorded,
-- so this index holds only those in flight (or whose sender died), however many wait for a retry.
CREATE INDEX "WebhookDelivery_sending_idx" ON "WebhookDelivery" ("lockedUntil")
  WHERE "status" = 'PENDING' AND "lockedUntil" IS NOT NULL;
