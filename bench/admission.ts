/**
 * `npm run bench:admission [-- --requests 500] [--json]`: what one request's admission costs as its key gets busier.
 * For keys that have made 0, 1, 10 and 100 requests a second for the last day (their quota steps as admission leaves
 * them; docs/benchmarks.md, session 42), with and without a daily image limit (which reads the day's window too), the
 * wall time and Postgres CPU of `requests` admissions one after another, on this machine's Postgres. `--json`: one
 * JSON line per figure.
 */
import { Args, runMain } from '../src/cli/args.ts';
import { createApiKey, setKeyLimits } from '../src/auth/keys.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { Admission, type NewGeneration } from '../src/generations/admission.ts';
import { cpuOf, isPostgres, processesCpu } from './cpu.ts';
import { freshDatabase } from './database.ts';

const postgresSeconds = async () => cpuOf(await processesCpu(), isPostgres);

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const requests = a.int('requests', 500);
  const json = a.flag('json');
  a.end();
  const db = await openDatabase({ url: await freshDatabase('ganvas_admission') });
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
      const [ms, cpuMs] = [wall / counted, (1000 * cpu) / counted];
      const measure = `admission, a key making ${perSecond} request${perSecond === 1 ? '' : 's'} a second${daily ? ', with a daily limit' : ''}`;
      if (json) {
        console.log(JSON.stringify({ measure: `${measure}: wall`, value: +ms.toFixed(2), unit: 'ms' }));
        console.log(JSON.stringify({ measure: `${measure}: Postgres CPU`, value: +cpuMs.toFixed(2), unit: 'ms' }));
      } else console.log(`${measure.padEnd(72)} ${ms.toFixed(2).padStart(6)} ms, Postgres CPU ${cpuMs.toFixed(2)} ms`);
    }
  await db.close();
});
