-- A pass's PNGs reach Postgres as one binary parameter, their bytes back to back with each one's length,
-- instead of a BYTEA[]: an array parameter travels as text, every byte as two hex digits the server parses
-- back (about 0.55 ms of its CPU per 9 kB image against 0.1; docs/benchmarks.md, session 18). The function of
-- 20261130050000_store_pass stays, for workers older than this migration during a rolling release: this one
-- cuts the bytes apart and calls it.
CREATE FUNCTION "ganvas_store_pass"(
  p_worker TEXT, p_generations UUID[], p_jobs BIGINT[], p_finish BOOLEAN[],
  p_image_generations UUID[], p_indexes INTEGER[], p_widths INTEGER[], p_heights INTEGER[], p_captions TEXT[],
  p_seeds INTEGER[], p_mixes DOUBLE PRECISION[], p_tokens TEXT[], p_png_bytes BYTEA, p_png_lengths INTEGER[],
  p_channel TEXT)
RETURNS TABLE ("generationId" UUID, "outcome" TEXT)
LANGUAGE sql AS $$
  SELECT * FROM "ganvas_store_pass"(
    p_worker, p_generations, p_jobs, p_finish, p_image_generations, p_indexes, p_widths, p_heights, p_captions,
    p_seeds, p_mixes, p_tokens,
    ARRAY(SELECT substring(p_png_bytes FROM (sum(x.l) OVER (ORDER BY x.k) - x.l + 1)::INTEGER FOR x.l)
            FROM unnest(p_png_lengths) WITH ORDINALITY AS x(l, k) ORDER BY x.k),
    p_channel)
$$;

-- PNG and JPEG bytes are compressed already: kept as they come (out of line, uncompressed) instead of Postgres
-- trying, and failing, to compress every value over 2 kB. Each ALTER holds its table exclusively until the
-- migration commits (a catalog change: no rewrite, old rows stay as they are): Generation first, then Image, the
-- order a store, a cancel and a delete lock them in, so the migration waits for them and never deadlocks with one.
ALTER TABLE "Generation" ALTER COLUMN "stylePng" SET STORAGE EXTERNAL;
ALTER TABLE "Image" ALTER COLUMN "png" SET STORAGE EXTERNAL;
