/**
 * A request's admission on Postgres and on embedded PGlite (src/generations/admission.ts and the `admission`
 * migration's functions): what one call writes and notifies, the row the service returns beside the row stored,
 * and each quota's refusal with its retry hint, counted from quota uses of known ages.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiKey, setKeyLimits } from '../src/auth/keys.ts';
import { type Database, openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { UserError } from '../src/errors.ts';
import { CHANNELS } from '../src/events/topics.ts';
import { Admission, type NewGeneration } from '../src/generations/admission.ts';
import { ModelCatalog } from '../src/generations/models.ts';
import { GenerationService } from '../src/generations/service.ts';
import { freshPostgres } from './support/db.ts';
import { until } from './support/until.ts';

let db: Database;
const SERVER = { perMinute: 100, queued: 100, imagesPerDay: null };

for (const kind of ['postgres', 'pglite'] as const)
  describe(`on ${kind}`, () => {
    let drop = async () => {};
    before(async () => {
      if (kind === 'postgres') {
        const pg = await freshPostgres(__filename);
        drop = pg.drop;
        db = await openDatabase({ url: pg.url });
      } else db = await openDatabase({ url: null, dataDir: 'memory://' });
      await migrate(db);
      await db.query(
        `INSERT INTO "Model" ("name", "imageSize", "variant", "trainingSteps", "untrained", "summary", "updatedAt")
         VALUES ('default', 64, 'gan-int-cls', 0, false, '', now())`,
      );
    });

    after(async () => {
      await db?.close();
      await drop();
    });

    const ONE: NewGeneration = {
      kind: 'TEXT_TO_IMAGE',
      captions: ['a red flower'],
      seed: 1,
      model: 'default',
      imageCount: 1,
    };

    /**
     * A key with these limits, and requests of it `hoursAgo` old with so many images each, counted in its steps of a
     * second and of a minute as admission counts them.
     */
    async function keyWith(
      limits: Parameters<typeof setKeyLimits>[2],
      uses: [hoursAgo: number, images: number][] = [],
    ) {
      const { id } = await createApiKey(db.prisma, 'admission');
      await setKeyLimits(db.prisma, id, limits);
      for (const [hoursAgo, images] of uses)
        await db.query(
          `INSERT INTO "QuotaStep" AS q ("owner", "seconds", "at", "requests", "images")
           SELECT $1, s, date_trunc(CASE s WHEN 1 THEN 'second' ELSE 'minute' END, now() - $3::interval), 1, $2
             FROM unnest(ARRAY[1, 60]) s
           ON CONFLICT ("owner", "seconds", "at")
           DO UPDATE SET "requests" = q."requests" + 1, "images" = q."images" + excluded."images"`,
          [id, images, `${hoursAgo} hours`],
        );
      return id;
    }

    /** The error `admit` throws: its code, message and retry hint. */
    async function refusal(a: Admission, owner: string, g: NewGeneration) {
      const err = await a.admit(owner, g).then(
        () => assert.fail('admitted'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof UserError);
      return { code: err.code, message: err.message, retry: err.details.retryAfterSeconds as number | undefined };
    }

    test('one call writes the generation, its job and quota use, and notifies API instances and workers', async () => {
      const heard: string[] = [];
      const stops = await Promise.all(
        [CHANNELS.generation, CHANNELS.jobs].map((c) => db.listen(c, (id) => heard.push(`${c}:${id}`))),
      );
      const owner = await keyWith({}, [[25, 7]]);
      const service = new GenerationService(db, new ModelCatalog(db.prisma, 'default'), {
        quotas: SERVER,
        allowPrivateWebhooks: true,
      });
      const returned = await service.interpolateNoise(owner, {
        caption: 'a red flower',
        fromSeed: 3,
        toSeed: 4,
        steps: 5,
        webhook: { url: 'http://127.0.0.1:9/hook', events: ['IMAGE', 'COMPLETED'] },
      });
      const stored = await db.prisma.generation.findUniqueOrThrow({
        where: { id: returned.id },
        omit: { stylePng: true },
      });
      assert.deepEqual(returned, stored, 'the row the mutation answers with is the row stored');
      assert.equal(stored.status, 'QUEUED');
      assert.equal(stored.apiKeyId, owner);
      assert.equal(await db.prisma.job.count({ where: { generationId: returned.id } }), 1);
      const steps = await db.prisma.quotaStep.findMany({ where: { owner }, orderBy: { seconds: 'asc' } });
      assert.deepEqual(
        steps.map((u) => [u.seconds, u.requests, u.images]),
        [
          [1, 1, 5],
          [60, 1, 5],
        ],
        'this request is counted in its second and its minute; the steps older than their windows are gone',
      );
      for (let i = 0; i < 500 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      const [generation, job] = heard.sort();
      assert.equal(generation, `${CHANNELS.generation}:${returned.id}`);
      // the jobs channel's names the model and captions too: an idle worker starts their phi at once
      assert.ok(job.startsWith(`${CHANNELS.jobs}:`));
      assert.deepEqual(JSON.parse(job.slice(CHANNELS.jobs.length + 1)), {
        id: returned.id,
        model: stored.model,
        captions: ['a red flower'],
      });
      await Promise.all(stops.map((s) => s()));
    });

    test("each write of an owner's generations is told before its answer, and the database tells every instance", async () => {
      const heard: string[] = [];
      const stop = await db.listen(CHANNELS.owners, (owner) => heard.push(owner));
      const told: (string | null)[] = [];
      const owner = await keyWith({});
      const service = new GenerationService(db, new ModelCatalog(db.prisma, 'default'), {
        quotas: SERVER,
        onChanged: (o) => told.push(o),
      });
      const a = await service.generateImages(owner, { caption: 'a red flower' });
      assert.deepEqual(told, [owner], 'made');
      await service.cancel(owner, a.id);
      await service.cancel(owner, a.id); // canceled already: nothing changes
      assert.deepEqual(told, [owner, owner], 'canceled once');
      const b = await service.generateImages(owner, { caption: 'a red flower' });
      await service.deleteGeneration(owner, b.id);
      await assert.rejects(service.deleteGeneration(owner, b.id)); // gone already
      assert.equal(await service.deleteGenerations(owner, { status: 'CANCELED' }), 1);
      await service.generateImages(null, { caption: 'a red flower' });
      assert.deepEqual(told, [owner, owner, owner, owner, owner, null]);
      // one NOTIFY a statement that touched the owner's generations (made, canceled, made, deleted, deleted), '' for
      // open mode's; a statement that touched none (the second cancel, the second delete) sends none
      await until('six NOTIFYs', async () => heard.length >= 6);
      assert.deepEqual(heard, [owner, owner, owner, owner, owner, '']);
      await stop();
    });

    test('requests a minute: uses older than a minute do not count; room comes back a minute after the oldest second ends', async () => {
      const owner = await keyWith({ rateLimitPerMinute: 2 }, [[1, 1]]);
      const a = new Admission(db, SERVER);
      await a.admit(owner, ONE);
      await a.admit(owner, ONE);
      const r = await refusal(a, owner, ONE);
      assert.equal(r.code, 'RATE_LIMITED');
      assert.match(r.message, /more than 2 requests a minute/);
      // the two requests' second ends within a second: room comes back 60-61 s from now
      assert.ok(r.retry! >= 60 && r.retry! <= 61, `retry in ${r.retry} s`);
      await assert.rejects(a.check(owner, 1), /more than 2 requests a minute/, 'the check without writing agrees');
    });

    test("a busy key's requests share their steps (open mode's too): what a window's count reads does not grow with them", async () => {
      const a = new Admission(db, SERVER);
      for (const owner of [await keyWith({}), null]) {
        await db.query(
          `DELETE FROM "QuotaStep" WHERE "owner" = coalesce($1::uuid, '00000000-0000-0000-0000-000000000000')`,
          [owner],
        );
        const made = new Date();
        for (let i = 0; i < 20; i++) await a.admit(owner, { ...ONE, imageCount: 2 });
        const steps = await db.query<{ seconds: number; requests: number; images: number }>(
          `SELECT "seconds", "requests", "images" FROM "QuotaStep"
            WHERE "owner" = coalesce($1::uuid, '00000000-0000-0000-0000-000000000000')`,
          [owner],
        );
        // as many steps as seconds (minutes) the requests' transactions began in
        const [{ s: seconds, m: minutes }] = await db.query<{ s: number; m: number }>(
          `SELECT count(DISTINCT date_trunc('second', "createdAt"))::int AS s,
                  count(DISTINCT date_trunc('minute', "createdAt"))::int AS m
             FROM "Generation" WHERE "apiKeyId" IS NOT DISTINCT FROM $1::uuid AND "createdAt" >= $2`,
          [owner, made],
        );
        for (const [length, count] of [
          [1, seconds],
          [60, minutes],
        ]) {
          const of = steps.filter((t) => t.seconds === length);
          assert.equal(of.length, count, `steps of ${length} s for 20 requests`);
          assert.deepEqual(
            [of.reduce((n, t) => n + t.requests, 0), of.reduce((n, t) => n + t.images, 0)],
            [20, 40],
            `steps of ${length} s`,
          );
        }
        assert.equal((await a.standing(owner)).requestsLastMinute, 20);
        await db.query(`UPDATE "Generation" SET "status" = 'CANCELED' WHERE "apiKeyId" IS NOT DISTINCT FROM $1::uuid`, [
          owner,
        ]);
      }
    });

    test('a step counts while its end is inside its window; admission drops the ones that left', async () => {
      const owner = await keyWith({});
      // one transaction, so now() is one instant: of each pair, the first step ends inside the window, the second not
      const counted = await db.prisma.$transaction(async (tx) => {
        await tx.$executeRaw`
          INSERT INTO "QuotaStep" ("owner", "seconds", "at", "requests", "images")
          VALUES (${owner}::uuid, 1, date_trunc('second', now()) - interval '60 seconds', 1, 1),
                 (${owner}::uuid, 1, date_trunc('second', now()) - interval '61 seconds', 10, 10),
                 (${owner}::uuid, 60, date_trunc('minute', now()) - interval '1 day', 1, 2),
                 (${owner}::uuid, 60, date_trunc('minute', now()) - interval '1 day 1 minute', 10, 20)`;
        return tx.$queryRaw<{ minute: number; day: number }[]>`
          SELECT (SELECT "used" FROM "ganvas_window_use"(${owner}::uuid, 1, interval '1 minute', false, 0, NULL)) AS minute,
                 (SELECT "used" FROM "ganvas_window_use"(${owner}::uuid, 60, interval '1 day', true, 0, NULL)) AS day`;
      });
      assert.deepEqual(counted, [{ minute: 1, day: 2 }]);
      await new Admission(db, SERVER).admit(owner, ONE);
      const left = await db.query<{ seconds: number; requests: number }>(
        `SELECT "seconds", "requests" FROM "QuotaStep" WHERE "owner" = $1 AND "requests" = 10 ORDER BY "seconds"`,
        [owner],
      );
      assert.deepEqual(left, [], 'the steps that no longer count are gone');
    });

    test('queued work: refused at the key queue limit, with the count and a short retry', async () => {
      const owner = await keyWith({ queueLimit: 2 });
      const a = new Admission(db, SERVER);
      await a.admit(owner, ONE);
      await a.admit(owner, ONE);
      const r = await refusal(a, owner, ONE);
      assert.equal(r.code, 'RATE_LIMITED');
      assert.match(r.message, /^2 generations are already queued or running/);
      assert.equal(r.retry, 5);
    });

    test('images a day: room comes back when the minutes of enough of the oldest uses leave the 24 hours', async () => {
      // 5 a day; 1 image 23 hours ago and 3 images 22 hours ago: asking for 3 needs 2 back, which only the
      // second use frees (when its minute has left the 24 hours: in 2 hours and up to a minute), not the first
      const owner = await keyWith({ imagesPerDay: 5 }, [
        [23, 1],
        [22, 3],
      ]);
      const a = new Admission(db, SERVER);
      const r = await refusal(a, owner, { ...ONE, imageCount: 3 });
      assert.equal(r.code, 'RATE_LIMITED');
      assert.match(r.message, /more than 5 images in 24 hours/);
      assert.ok(r.retry! >= 7200 && r.retry! <= 7262, `retry in ${r.retry} s`);
      await a.admit(owner, ONE); // what is left of the day
      const whole = await refusal(a, owner, { ...ONE, imageCount: 6 });
      assert.deepEqual([whole.code, whole.message], ['BAD_USER_INPUT', 'asks for 6 images; your limit is 5 a day']);
      assert.equal(await db.prisma.generation.count({ where: { apiKeyId: owner } }), 1, 'refusals write nothing');
    });

    test('more images than a whole day is BAD_USER_INPUT even while the minute or the queue is full: waiting cannot help', async () => {
      const owner = await keyWith({ imagesPerDay: 5, rateLimitPerMinute: 1, queueLimit: 1 });
      const a = new Admission(db, SERVER);
      await a.admit(owner, ONE); // the minute's one request, and the queue's one generation
      for (const ask of [(g: NewGeneration) => a.admit(owner, g), (g: NewGeneration) => a.check(owner, g.imageCount)])
        await assert.rejects(ask({ ...ONE, imageCount: 6 }), (e: unknown) => {
          assert.ok(e instanceof UserError);
          assert.deepEqual([e.code, e.message], ['BAD_USER_INPUT', 'asks for 6 images; your limit is 5 a day']);
          return true;
        });
      assert.equal((await refusal(a, owner, ONE)).code, 'RATE_LIMITED', 'a request the day allows waits its turn');
    });

    test("the quota query: a key's limits (its own, else the server's) and what it uses, as admission counts", async () => {
      const a = new Admission(db, SERVER);
      const owner = await keyWith({ imagesPerDay: 50 }, [
        [0.001, 4], // 3.6 s ago: this minute
        [23, 5],
        [25, 9], // out of the 24 hours
      ]);
      await a.admit(owner, { ...ONE, imageCount: 2 });
      assert.deepEqual(await a.standing(owner), {
        perMinute: 100,
        requestsLastMinute: 2,
        queued: 100,
        queuedNow: 1,
        imagesPerDay: 50,
        imagesLast24h: 11,
      });
      const fresh = await keyWith({ rateLimitPerMinute: 3 });
      assert.deepEqual(await a.standing(fresh), {
        perMinute: 3,
        requestsLastMinute: 0,
        queued: 100,
        queuedNow: 0,
        imagesPerDay: null,
        imagesLast24h: 0,
      });
    });

    test("the service's pool reads give the rows Prisma's client gives, on this driver", async () => {
      const owner = await keyWith({}, []);
      const service = new GenerationService(db, new ModelCatalog(db.prisma, 'default'), {
        quotas: SERVER,
        allowPrivateWebhooks: true,
      });
      const plain = await service.generateImages(owner, { caption: 'a red flower', count: 2 });
      const hooked = await service.generateImages(owner, {
        caption: 'a blue flower',
        count: 1,
        webhook: { url: 'http://127.0.0.1:9/hook', events: ['STARTED'] },
      });
      const png = Uint8Array.from([137, 80, 78, 71, 1, 2, 3]);
      // index 1 first: reads give them in index order; one mix is null
      for (const [index, mix] of [
        [1, null],
        [0, 0.25],
      ])
        await db.query(
          `INSERT INTO "Image" (id, "generationId", index, width, height, caption, seed, mix, token, png)
           VALUES (gen_random_uuid(), $1, $2, 64, 64, 'a red flower', 5, $3, 'tok', $4)`,
          [plain.id, index, mix, png],
        );
      const omit = { stylePng: true } as const;
      for (const g of [plain, hooked]) {
        const viaPrisma = await db.prisma.generation.findUniqueOrThrow({ where: { id: g.id }, omit });
        assert.deepEqual((await service.generationWithImages(g.id))?.row, viaPrisma);
        assert.deepEqual(await service.requireGeneration(owner, g.id), viaPrisma);
      }
      const page = await service.page(service.pageQuery(owner, { first: 5 }));
      assert.deepEqual(
        page.nodes,
        await db.prisma.generation.findMany({
          where: { apiKeyId: owner },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          omit,
        }),
      );
      const images = await db.prisma.image.findMany({
        where: { generationId: plain.id },
        omit: { png: true },
        orderBy: { index: 'asc' },
      });
      assert.deepEqual(
        (await service.imagesOf([plain.id])).map(({ url: _, ...row }) => row),
        images,
      );
      // a change's read for its subscribers: the row and its images in one statement (images once progress > 0)
      assert.deepEqual((await service.generationWithImages(plain.id))?.images, [], 'progress 0: none asked for');
      await db.query('UPDATE "Generation" SET progress = 0.5 WHERE id = $1', [plain.id]);
      const found = await service.generationWithImages(plain.id);
      assert.deepEqual(found?.row, await db.prisma.generation.findUniqueOrThrow({ where: { id: plain.id }, omit }));
      assert.deepEqual(found?.images, await service.imagesOf([plain.id]));
      assert.deepEqual(
        found?.images.map((i) => [i.index, i.mix]),
        [
          [0, 0.25],
          [1, null],
        ],
      );
      assert.deepEqual(Uint8Array.from((await service.png(images[0].id, 'tok'))!), png);
      assert.equal(await service.png(images[0].id, 'other'), null);
    });
  });
