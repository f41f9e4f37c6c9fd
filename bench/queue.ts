/**
 * `npm run bench:queue [-- --requests 500] [--json]`: what the queue's two hot statements cost as the load behind them
 * grows, on this machine's Postgres (docs/benchmarks.md, session 42). A request's admission, for keys that have made
 * 0, 1, 10 and 100 requests a second for the last day (their quota steps as admission leaves them), with and without a
 * daily image limit (which reads the day's window too): the wall time and Postgres CPU of `requests` admissions one
 * after another. A worker's claim of 64 jobs with 1,000, 10,000 and 100,000 queued by one key and one job of another
 * key behind them: the same for 10 claims (after 3 not timed), each claim's jobs then done; and the same where many
 * keys have a few jobs each (100 keys with 100, 1,000 with 2, 10,000 with 1). `--json`: one JSON line per figure.
 */
import { Args, runMain } from '../src/cli/args.ts';
import { createApiKey, setKeyLimits } from '../src/auth/keys.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { Admission, type NewGeneration } from '../src/generations/admission.ts';
import { claim } from '../src/queue/queue.ts';
import { cpuOf, isPostgres, processesCpu } from './cpu.ts';
import { freshDatabase } from './database.ts';

const postgresSeconds = async () => cpuOf(await processesCpu(), isPostgres);

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const requests = a.int('requests', 500);
  const json = a.flag('json');
  a.end();
  const db = await openDatabase({ url: await freshDatabase('ganvas_queue') });
  await migrate(db);
  await db.query(
    `INSERT INTO "Model" ("name", "imageSize", "variant", "trainingSteps", "untrained", "summary", "updatedAt")
     VALUES ('default', 64, 'gan-int-cls', 0, false, '', now())`,
  );
  const admission = new Admission(db, { perMinute: 1_000_000, queued: 1_000_000, imagesPerDay: null });
  const ask: NewGeneration = {
    kind: 'TEXT_TO_IMAGE',
    captions: ['a red flower'],
    seed: 1,
    model: 'default',
    imageCount: 2,
  };
  const report = (measure: string, ms: number, cpuMs: number) => {
    if (json) {
      console.log(JSON.stringify({ measure: `${measure}: wall`, value: +ms.toFixed(2), unit: 'ms' }));
      console.log(JSON.stringify({ measure: `${measure}: Postgres CPU`, value: +cpuMs.toFixed(2), unit: 'ms' }));
    } else console.log(`${measure.padEnd(72)} ${ms.toFixed(2).padStart(6)} ms, Postgres CPU ${cpuMs.toFixed(2)} ms`);
  };
  for (const daily of [false, true])
    for (const perSecond of [0, 1, 10, 100]) {
      const { id } = await createApiKey(db.prisma, `${perSecond} a second`);
      if (daily) await setKeyLimits(db.prisma, id, { imagesPerDay: 1_000_000_000 });
      // the day behind it: each second of the last minute and each minute of the last day with its requests
      await db.query(
        `INSERT INTO "QuotaStep" ("owner", "seconds", "at", "requests", "images")
         SELECT $1, s, date_trunc(CASE s WHEN 1 THEN 'second' ELSE 'minute' END, now()) - k * make_interval(secs => s),
                $2 * s, 2 * $2 * s
           FROM unnest(ARRAY[1, 60]) s, generate_series(1, CASE s WHEN 1 THEN 60 ELSE 1440 END) k
          WHERE $2 > 0`,
        [id, perSecond],
      );
      await db.exec('ANALYZE');
      // in rounds of 50 (the first not timed: plans cached, as on a running API), each round's generations then
      // finished, so that the queue limit's count reads no more than a round's
      let wall = 0;
      let cpu = 0;
      for (let round = 0; round <= Math.ceil(requests / 50); round++) {
        const cpu0 = await postgresSeconds();
        const began = performance.now();
        for (let i = 0; i < 50; i++) await admission.admit(id, ask);
        if (round > 0) [wall, cpu] = [wall + performance.now() - began, cpu + (await postgresSeconds()) - cpu0];
        await db.query(`UPDATE "Generation" SET "status" = 'CANCELED' WHERE "apiKeyId" = $1`, [id]);
      }
      const counted = 50 * Math.ceil(requests / 50);
      report(
        `admission, a key making ${perSecond} request${perSecond === 1 ? '' : 's'} a second${daily ? ', with a daily limit' : ''}`,
        wall / counted,
        (1000 * cpu) / counted,
      );
    }

  /** 10 claims of 64 (after 3 not timed) of the queue as it is, each claim's jobs then done (drawn and stored). */
  const timeClaims = async (measure: string) => {
    await db.exec('ANALYZE');
    let wall = 0;
    let cpu = 0;
    for (let i = 0; i < 13; i++) {
      const cpu0 = await postgresSeconds();
      const began = performance.now();
      await claim(db, 'bench', ['default'], 64, 60);
      if (i >= 3) [wall, cpu] = [wall + performance.now() - began, cpu + (await postgresSeconds()) - cpu0];
      await db.exec('DELETE FROM "Job" WHERE "lockedBy" IS NOT NULL');
    }
    report(measure, wall / 10, (1000 * cpu) / 10);
  };

  // the claim: a heavy key's backlog deepened to each depth, and one job of another key behind it
  await db.exec('DELETE FROM "Job"');
  let queued = 0;
  for (const depth of [1_000, 10_000, 100_000]) {
    const light = (await createApiKey(db.prisma, `behind ${depth}`)).id;
    await db.query(
      `WITH g AS (INSERT INTO "Generation" ("id", "kind", "captions", "seed", "model", "imageCount", "apiKeyId")
                  SELECT gen_random_uuid(), 'TEXT_TO_IMAGE', ARRAY['a red flower'], i, 'default', 1 + i % 4,
                         CASE WHEN i = $1::int THEN $2::uuid END
                    FROM generate_series(1, $1::int) i RETURNING "id")
       INSERT INTO "Job" ("generationId") SELECT "id" FROM g`,
      [depth - queued, light],
    );
    queued = depth;
    await timeClaims(`claim of 64 jobs, ${depth.toLocaleString('en')} queued`);
    queued -= 13 * 64;
  }

  // the claim where many keys each have a few jobs: keys asking in turn, so that their jobs are interleaved
  for (const [keys, each] of [
    [100, 100],
    [1_000, 2],
    [10_000, 1],
  ]) {
    await db.exec('DELETE FROM "Job"');
    await db.query(
      `WITH k AS (INSERT INTO "ApiKey" ("id", "name", "keyHash", "webhookSecret")
                  SELECT gen_random_uuid(), 'many ' || i, 'many ' || $1::int || ' ' || i, 'whsec_x'
                    FROM generate_series(1, $1::int) i RETURNING "id"),
            n AS (SELECT "id", row_number() OVER () AS "n" FROM k),
            g AS (INSERT INTO "Generation" ("id", "kind", "captions", "seed", "model", "imageCount", "apiKeyId")
                  SELECT gen_random_uuid(), 'TEXT_TO_IMAGE', ARRAY['a red flower'], i * $1::int + n."n", 'default',
                         1 + n."n"::int % 4, n."id"
                    FROM generate_series(0, $2::int - 1) i, n RETURNING "id", "seed")
       INSERT INTO "Job" ("generationId") SELECT "id" FROM g ORDER BY "seed"`,
      [keys, each],
    );
    await timeClaims(`claim of 64 jobs, ${keys.toLocaleString('en')} keys with ${each} queued each`);
  }
  await db.close();
});
