-- A style transfer from a stored image carries a copy of that image's PNG from its insert, so deleting the
-- source (by hand or by retention) after the request does not make it fail; the worker reads only "stylePng".
-- The copy is made by a trigger, not by the API, so API processes older than this migration (still serving
-- during a rolling release) admit transfers that get it too. Transfers waiting now get theirs here.
CREATE FUNCTION "ganvas_copy_style_png"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW."styleImageId" IS NOT NULL AND NEW."stylePng" IS NULL THEN
    SELECT i."png" INTO NEW."stylePng" FROM "Image" i WHERE i."id" = NEW."styleImageId";
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER "Generation_copy_style_png" BEFORE INSERT ON "Generation"
  FOR EACH ROW EXECUTE FUNCTION "ganvas_copy_style_png"();

UPDATE "Generation" g SET "stylePng" = i."png"
  FROM "Image" i
 WHERE g."styleImageId" = i."id" AND g."stylePng" IS NULL AND g."status" IN ('QUEUED', 'RUNNING');
