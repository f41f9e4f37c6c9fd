-- A style transfer from a stored image now carries a copy of that image's PNG from its admission
-- (src/generations/service.ts transferStyle), so deleting the source after the request does not make it fail;
-- transfers waiting when this runs get their copy here (the worker reads only "stylePng").
UPDATE "Generation" g SET "stylePng" = i."png"
  FROM "Image" i
 WHERE g."styleImageId" = i."id" AND g."stylePng" IS NULL AND g."status" IN ('QUEUED', 'RUNNING');
