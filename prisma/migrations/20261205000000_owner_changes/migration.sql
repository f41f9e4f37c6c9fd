-- Every statement that makes, changes or deletes generations or their images NOTIFYs 'ganvas_owners' once for each
-- owner whose generations it touched (the API key's id; '' for open mode's, which has none; '*' after a TRUNCATE:
-- every owner's), from whatever process or hand wrote them. An API instance keeps the pages of generations it
-- answered lately and answers them again until its owner's next change (src/generations/owner-pages.ts). ganvas's
-- own writes of images come with their generation's row (a worker's pass updates its progress or status in the same
-- transaction, ganvas_store_pass; a deletion cascades): the image triggers' NOTIFY is then the same one, sent once.
CREATE FUNCTION "ganvas_notify_owners"(p_owners UUID[]) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ganvas_owners', coalesce(o::TEXT, '')) FROM (SELECT DISTINCT unnest(p_owners) AS o) x;
END $$;

CREATE FUNCTION "ganvas_owners_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('ganvas_owners', '*');
  ELSIF TG_OP = 'INSERT' THEN
    PERFORM "ganvas_notify_owners"(ARRAY(SELECT "apiKeyId" FROM new_rows));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ganvas_notify_owners"(ARRAY(SELECT "apiKeyId" FROM new_rows UNION SELECT "apiKeyId" FROM old_rows));
  ELSE
    PERFORM "ganvas_notify_owners"(ARRAY(SELECT "apiKeyId" FROM old_rows));
  END IF;
  RETURN NULL;
END $$;

-- An image's owner is its generation's: images deleted with their generation (a cascade, after the generation's row
-- is gone) find none, and that statement's NOTIFY came from the generation's trigger.
CREATE FUNCTION "ganvas_image_owners_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_generations UUID[];
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('ganvas_owners', '*');
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    v_generations := ARRAY(SELECT "generationId" FROM new_rows);
  ELSIF TG_OP = 'UPDATE' THEN
    v_generations := ARRAY(SELECT "generationId" FROM new_rows UNION SELECT "generationId" FROM old_rows);
  ELSE
    v_generations := ARRAY(SELECT "generationId" FROM old_rows);
  END IF;
  PERFORM "ganvas_notify_owners"(ARRAY(SELECT "apiKeyId" FROM "Generation" WHERE "id" = ANY(v_generations)));
  RETURN NULL;
END $$;

CREATE TRIGGER "ganvas_owners_inserted" AFTER INSERT ON "Generation"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_owners_changed"();
CREATE TRIGGER "ganvas_owners_updated" AFTER UPDATE ON "Generation"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_owners_changed"();
CREATE TRIGGER "ganvas_owners_deleted" AFTER DELETE ON "Generation"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_owners_changed"();
CREATE TRIGGER "ganvas_owners_truncated" AFTER TRUNCATE ON "Generation"
  FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_owners_changed"();
CREATE TRIGGER "ganvas_image_owners_inserted" AFTER INSERT ON "Image"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_image_owners_changed"();
CREATE TRIGGER "ganvas_image_owners_updated" AFTER UPDATE ON "Image"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_image_owners_changed"();
CREATE TRIGGER "ganvas_image_owners_deleted" AFTER DELETE ON "Image"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_image_owners_changed"();
CREATE TRIGGER "ganvas_image_owners_truncated" AFTER TRUNCATE ON "Image"
  FOR EACH STATEMENT EXECUTE FUNCTION "ganvas_image_owners_changed"();
