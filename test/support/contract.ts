/**
 * The GraphQL contract, end to end through real HTTP and graphql-ws clients, against one database kind.
 * The API starts first without a worker (so queued work stays queued), then a worker joins.
 */
import { basename } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createCanvas } from '@napi-rs/canvas';
import type { Client } from 'graphql-ws';
import { readPngText, decodePng } from '../../src/images/png.ts';
import type { Config } from '../../src/config.ts';
import { type Running, startServices } from '../../src/services.ts';
import { silentLogger } from '../../src/ops/log.ts';
import { freshPostgres } from './db.ts';
import { codeOf, collect, gql, wsClient } from './graphql.ts';
import { testConfig } from './config.ts';
import { GenerationService } from '../../src/generations/service.ts';
import { ModelCatalog } from '../../src/generations/models.ts';
import { tinyModelDir } from './model.ts';
import { startInProcessWorker } from './worker.ts';
import { until } from './until.ts';
import { CHANNELS } from '../../src/events/topics.ts';

const GENERATION = `id kind status captions seed model error progress createdAt startedAt finishedAt
  images { id index url width height caption seed mix }`;

/** A finished generation made by hand in SQL ($1: its owner), as another process would make one. */
const BY_HAND = `INSERT INTO "Generation" ("id", "kind", "captions", "seed", "model", "imageCount", "status", "error", "apiKeyId")
  VALUES (gen_random_uuid(), 'TEXT_TO_IMAGE', '{by hand}', 1, 'tiny', 1, 'FAILED', 'made by hand', $1::uuid)
  RETURNING "id"::text AS "id"`;
const OTHER_KEY = '0b0b0b0b-0000-4000-8000-000000000001';

export function contractSuite(kind: 'postgres' | 'pglite', testFile: string): void {
  describe(`GraphQL contract on ${kind}`, () => {
    let api: Running;
    let worker: Running | null = null;
    let url = '';
    let origin = '';
    let ws: Client;
    let drop: (() => Promise<void>) | null = null;
    let config: Config;

    const count = async () =>
      Number((await api.db.query<{ n: string }>('SELECT count(*)::text AS n FROM "Generation"'))[0].n);

    before(async () => {
      const modelDir = await tinyModelDir();
      let databaseUrl: string | null = null;
      if (kind === 'postgres') {
        const pgdb = await freshPostgres(testFile);
        databaseUrl = pgdb.url;
        drop = pgdb.drop;
      }
      config = testConfig(modelDir, { databaseUrl, workerId: `test-${kind}` });
      api = await startServices(config, { api: true, worker: false, migrate: true, auth: 'open' }, silentLogger());
      url = api.api!.url;
      origin = new URL(url).origin;
      ws = wsClient(url);
    });

    after(async () => {
      await ws?.dispose();
      await worker?.stop();
      await api?.stop();
      await drop?.();
    });

    async function startWorker(): Promise<void> {
      worker =
        kind === 'pglite'
          ? {
              db: api.db,
              metrics: api.metrics,
              workers: [],
              inferences: [],
              sweeps: [],
              fatal: new Promise<Error>(() => {}),
              ...(await startInProcessWorker(api, config, 'tiny')),
            }
          : await startServices(config, { api: false, worker: true, migrate: false }, silentLogger());
    }

    test('models lists the checkpoint, labelled untrained', async () => {
      const r = await gql(url, '{ models { name imageSize variant isDefault untrained } }');
      assert.deepEqual(r.data!.models, [
        { name: 'tiny', imageSize: 32, variant: 'gan-int-cls', isDefault: true, untrained: true },
      ]);
    });

    test('each limit is BAD_USER_INPUT and stores nothing', async () => {
      const before = await count();
      // each with the input field its extensions.field names (a variable of the wrong type: graphql-js's own)
      const bad: [string, Record<string, unknown>, string?][] = [
        ['mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }', { i: { caption: '' } }, 'caption'],
        [
          'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
          { i: { caption: '   \n ' } },
          'caption',
        ],
        [
          'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
          { i: { caption: 'x'.repeat(501) } },
          'caption',
        ],
        [
          'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
          { i: { caption: 'a flower', count: 0 } },
          'count',
        ],
        [
          'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
          { i: { caption: 'a flower', count: 17 } },
          'count',
        ],
        [
          'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
          { i: { caption: 'a flower', model: 'nope' } },
          'model',
        ],
        ['mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }', { i: { caption: 7 } }],
        [
          'mutation($i: InterpolateCaptionsInput!) { interpolateCaptions(input: $i) { id } }',
          { i: { from: 'a', to: 'b', steps: 1 } },
          'steps',
        ],
        [
          'mutation($i: InterpolateCaptionsInput!) { interpolateCaptions(input: $i) { id } }',
          { i: { from: 'a', to: 'b', steps: 17 } },
          'steps',
        ],
        [
          'mutation($i: InterpolateCaptionsInput!) { interpolateCaptions(input: $i) { id } }',
          { i: { from: ' ', to: 'b' } },
          'from',
        ],
        [
          'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }',
          { i: { imageId: 'not-an-id', captions: ['a'] } },
          'imageId',
        ],
        // an unknown model is the request's error before whether its image exists, as for the other requests
        [
          'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }',
          { i: { imageId: '00000000-0000-0000-0000-000000000000', captions: ['a'], model: 'nope' } },
          'model',
        ],
        [
          'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }',
          { i: { imageId: '00000000-0000-0000-0000-000000000000', captions: [] } },
          'captions',
        ],
        [
          'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }',
          { i: { imageId: '00000000-0000-0000-0000-000000000000', captions: Array(17).fill('a') } },
          'captions',
        ],
        ['mutation { cancelGeneration(id: "123") { id } }', {}, 'id'],
        ['{ generation(id: "zzz") { id } }', {}, 'id'],
        ['{ generations(first: 0) { edges { cursor } } }', {}, 'first'],
        ['{ generations(after: "garbage") { edges { cursor } } }', {}, 'after'],
        // an empty cursor is not "no cursor" (a pager that turned a missing cursor into "" would loop on page 1)
        ['{ generations(after: "") { edges { cursor } } }', {}, 'after'],
      ];
      for (const [query, variables, field] of bad) {
        const r = await gql(url, query, variables);
        const what = `${query} ${JSON.stringify(variables).slice(0, 80)} -> ${JSON.stringify(r.errors)}`;
        assert.equal(codeOf(r), 'BAD_USER_INPUT', what);
        if (field) assert.equal(r.errors![0].extensions!.field, field, what);
      }
      // a cursor that decodes but whose parts are wrong is still "not a cursor", not its parts' own errors
      const forged = Buffer.from('2026-12-03T00:00:00Z|zzz').toString('base64url');
      const r = await gql(url, `{ generations(after: "${forged}") { edges { cursor } } }`);
      assert.equal(r.errors?.[0]?.message, 'after is not a cursor from this API');
      assert.equal(await count(), before);
    });

    test('malformed requests answer a coded JSON error, never a 500 or an HTML page', async () => {
      const before = await count();
      const post = (body: string, type = 'application/json') =>
        fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
      const cases: [string, string | undefined][] = [
        ['{bad json', undefined],
        [JSON.stringify({ query: 5 }), undefined],
        [JSON.stringify({ query: '{ nope }' }), undefined],
        [JSON.stringify({ query: `{ generation(id: "${'a'.repeat(10_000)}") { id } }` }), undefined],
        [JSON.stringify({ query: 'x'.repeat(2_000_000) }), undefined],
        ['hello', 'text/plain'],
      ];
      for (const [body, type] of cases) {
        const res = await post(body, type);
        assert.ok(res.status < 500, `${body.slice(0, 40)} -> ${res.status}`);
        const json = (await res.json()) as { errors?: { extensions?: { code?: string; stacktrace?: unknown } }[] };
        assert.ok(json.errors?.[0]?.extensions?.code, `${body.slice(0, 40)} -> ${JSON.stringify(json).slice(0, 200)}`);
        assert.equal(json.errors[0].extensions!.stacktrace, undefined);
      }
      assert.equal(await count(), before);
    });

    test('GET /graphql without a query says how to ask (not a CSRF refusal); a GET with one still runs', async () => {
      const res = await fetch(url);
      assert.equal(res.status, 400);
      const json = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
      assert.equal(json.errors[0].extensions.code, 'BAD_REQUEST');
      assert.match(json.errors[0].message, /^No query: POST a JSON body/);
      const ok = await fetch(`${url}?query=${encodeURIComponent('{ models { name } }')}`, {
        headers: { 'apollo-require-preflight': 'true' },
      });
      assert.equal(ok.status, 200, await ok.clone().text());
    });

    test('an unknown path is a plain 404, another method on a readable path 405 with Allow, a preflight 204 without CORS', async () => {
      const base = url.replace(/\/graphql$/, '');
      const cases: [string, string, number, string | null][] = [
        ['GET', '/nope', 404, null],
        ['OPTIONS', '/graphql', 204, 'GET, HEAD, POST'],
        ['POST', '/images/00000000-0000-4000-8000-000000000000.png', 405, 'GET, HEAD'],
        ['DELETE', '/generations/00000000-0000-4000-8000-000000000000/animation.png', 405, 'GET, HEAD'],
      ];
      for (const [method, path, status, allow] of cases) {
        const res = await fetch(base + path, { method });
        assert.equal(res.status, status, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
        assert.equal(res.headers.get('access-control-allow-origin'), null, 'no CORS');
        if (status === 204) continue;
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
        assert.doesNotMatch(await res.text(), /<html|<!DOCTYPE/i);
      }
    });

    test('well-formed ids that do not exist are NOT_FOUND, over HTTP and WebSocket', async () => {
      const id = '00000000-0000-4000-8000-000000000000';
      assert.equal(codeOf(await gql(url, `{ generation(id: "${id}") { id } }`)), 'NOT_FOUND');
      assert.equal(codeOf(await gql(url, `{ image(id: "${id}") { id } }`)), 'NOT_FOUND');
      assert.equal(codeOf(await gql(url, `mutation { cancelGeneration(id: "${id}") { id } }`)), 'NOT_FOUND');
      assert.equal(
        codeOf(await gql(url, `mutation { transferStyle(input: { imageId: "${id}", captions: ["a"] }) { id } }`)),
        'NOT_FOUND',
      );
      const events = await collect(ws, `subscription { generationUpdated(id: "${id}") { id } }`, {});
      assert.equal(codeOf(events.at(-1)!), 'NOT_FOUND');
      assert.equal((await fetch(`${origin}/images/${id}.png`)).status, 404);
    });

    test('a queued generation cancels at once; a cancel sent again answers it as it is', async () => {
      const g = (await gql(url, 'mutation { generateImages(input: { caption: "a blue flower" }) { id status } }')).data!
        .generateImages;
      assert.equal(g.status, 'QUEUED');
      const watching = collect(ws, `subscription { generationUpdated(id: "${g.id}") { status } }`, {}, 10_000);
      await new Promise((r) => setTimeout(r, 300)); // subscribed before the cancel
      const c = await gql(url, `mutation { cancelGeneration(id: "${g.id}") { id status finishedAt } }`);
      assert.equal(c.data!.cancelGeneration.status, 'CANCELED');
      // its subscriber hears it (the cancel's NOTIFY) and the subscription ends
      assert.equal((await watching).at(-1)!.data!.generationUpdated.status, 'CANCELED');
      assert.ok(c.data!.cancelGeneration.finishedAt);
      assert.equal((await api.db.query('SELECT 1 FROM "Job" WHERE "generationId" = $1', [g.id])).length, 0);
      const again = await gql(url, `mutation { cancelGeneration(id: "${g.id}") { id status finishedAt } }`);
      assert.deepEqual(again.data!.cancelGeneration, c.data!.cancelGeneration, 'the same answer, nothing changed');
    });

    test('an idempotency key makes one generation: sent again (at once too) it answers that one, counted once', async () => {
      const generate = (input: Record<string, unknown>) =>
        gql(url, 'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id status idempotencyKey } }', {
          i: input,
        });
      const used = async () => (await gql(url, '{ quota { requestsLastMinute } }')).data!.quota.requestsLastMinute;
      const before = await count();
      const usedBefore = await used();
      const first = (await generate({ caption: 'a red flower', count: 2, idempotencyKey: `retry ${kind}` })).data!
        .generateImages;
      assert.equal(first.idempotencyKey, `retry ${kind}`);
      const again = await generate({ caption: 'a red flower', count: 2, idempotencyKey: `retry ${kind}` });
      assert.equal(again.data!.generateImages.id, first.id);
      // three at once with another key, all past the service's look for an earlier one before any is admitted:
      // one generation (admission looks again under the owner's lock), every answer it
      const service = new GenerationService(api.db, new ModelCatalog(api.db.prisma, basename(config.modelDirs[0])));
      const racing = await Promise.all(
        [1, 2, 3].map(() =>
          service.generateImages(null, { caption: 'a red flower', count: 2, idempotencyKey: `race ${kind}` }),
        ),
      );
      assert.equal(new Set(racing.map((g) => g.id)).size, 1);
      assert.equal(await count(), before + 2);
      assert.equal(await used(), usedBefore + 2, 'a retry is not counted');
      // the same key for another request, or a key that is not one, is BAD_USER_INPUT and stores nothing
      const other = await generate({ caption: 'a blue flower', count: 2, idempotencyKey: `retry ${kind}` });
      assert.equal(codeOf(other), 'BAD_USER_INPUT');
      assert.match(other.errors![0].message, /was used for another request/);
      assert.equal(other.errors![0].extensions!.generationId, first.id, 'the generation the key made');
      const interpolation = await gql(
        url,
        `mutation { interpolateCaptions(input: { from: "a red flower", to: "a blue flower", idempotencyKey: "retry ${kind}" }) { id } }`,
      );
      assert.equal(codeOf(interpolation), 'BAD_USER_INPUT');
      for (const bad of ['', 'x'.repeat(201), 'a\nb'])
        assert.equal(codeOf(await generate({ caption: 'a red flower', idempotencyKey: bad })), 'BAD_USER_INPUT', bad);
      assert.equal(await count(), before + 2);
      // an upload's key: the same image again answers its generation; another image is another request
      const upload = (fill: string, wrap = '') => {
        const canvas = createCanvas(20, 20);
        const c2d = canvas.getContext('2d');
        c2d.fillStyle = fill;
        c2d.fillRect(0, 0, 20, 20);
        return gql(url, 'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
          i: {
            image: wrap + canvas.toBuffer('image/png').toString('base64'),
            captions: ['a red flower'],
            idempotencyKey: `upload ${kind}`,
          },
        });
      };
      const styled = (await upload('#3a5')).data!.transferStyle.id;
      assert.equal((await upload('#3a5', 'data:image/png;base64,')).data!.transferStyle.id, styled);
      const otherImage = await upload('#a35');
      assert.equal(codeOf(otherImage), 'BAD_USER_INPUT');
      assert.match(otherImage.errors![0].message, /was used for another request/);
      assert.equal(await count(), before + 3);
    });

    test('text to image: QUEUED at once, live updates to SUCCEEDED, PNGs with metadata, same seed same pixels', async () => {
      await startWorker();
      const m = await gql(
        url,
        'mutation { generateImages(input: { caption: "a red flower with five petals", count: 3, seed: 41 }) { id status seed } }',
      );
      const g = m.data!.generateImages;
      assert.equal(g.status, 'QUEUED');
      assert.equal(g.seed, 41);
      const events = await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, {
        id: g.id,
      });
      const states = events.map((e) => e.data!.generationUpdated);
      const last = states.at(-1)!;
      assert.equal(last.status, 'SUCCEEDED');
      assert.equal(last.progress, 1);
      assert.ok(last.startedAt && last.finishedAt);
      assert.deepEqual(
        last.images.map((i: { index: number; seed: number }) => [i.index, i.seed]),
        [
          [0, 41],
          [1, 42],
          [2, 43],
        ],
      );
      const progress = states.map((s) => s.progress);
      assert.deepEqual(
        progress,
        [...progress].sort((a, b) => a - b),
        'progress never goes back',
      );
      assert.ok(states.some((s) => s.status === 'RUNNING' || s.images.length > 0) || states.length === 1);

      const res = await fetch(origin + last.images[0].url);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.equal(res.headers.get('cache-control'), 'private, max-age=86400, immutable');
      const png = Buffer.from(await res.arrayBuffer());
      assert.deepEqual(readPngText(png), {
        caption: 'a red flower with five petals',
        seed: '41',
        model: 'tiny',
        kind: 'TEXT_TO_IMAGE',
      });
      assert.equal(decodePng(png).width, 32);

      // the same request again gives the same pixels, whatever it is batched with
      const again = (
        await gql(
          url,
          'mutation { generateImages(input: { caption: "a red flower with five petals", count: 1, seed: 41 }) { id } }',
        )
      ).data!.generateImages;
      await gql(url, 'mutation { generateImages(input: { caption: "something else", count: 5 }) { id } }');
      const done = (
        await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: again.id })
      ).at(-1)!.data!.generationUpdated;
      const png2 = Buffer.from(await (await fetch(origin + done.images[0].url)).arrayBuffer());
      assert.deepEqual(decodePng(png2).rgb, decodePng(png).rgb);

      const noSeed = (await gql(url, 'mutation { generateImages(input: { caption: "any" , count: 1 }) { seed } }'))
        .data!.generateImages;
      assert.equal(typeof noSeed.seed, 'number');

      // a wrong token is a 404 whatever its characters, the right length in UTF-16 or not
      const [path, token] = last.images[0].url.split('?t=');
      for (const wrong of ['é'.repeat(token.length), '\u{1f338}'.repeat(token.length / 2), 'x', ''])
        assert.equal((await fetch(`${origin}${path}?t=${encodeURIComponent(wrong)}`)).status, 404, wrong);
    });

    test('control characters in a caption (NUL, newlines, tabs) become spaces', async () => {
      const g = (
        await gql(url, 'mutation($c: String!) { generateImages(input: { caption: $c, count: 1 }) { id captions } }', {
          c: '\ta red\u0000flower\nwith\u0007five petals\r\n',
        })
      ).data!.generateImages;
      assert.deepEqual(g.captions, ['a red flower with five petals']);
      assert.equal(
        codeOf(
          await gql(url, 'mutation($c: String!) { generateImages(input: { caption: $c }) { id } }', {
            c: '\u0000\u0001\n',
          }),
        ),
        'BAD_USER_INPUT',
      );
    });

    test('caption interpolation: one z, mix = i / (steps - 1)', async () => {
      const g = (
        await gql(
          url,
          'mutation { interpolateCaptions(input: { from: "a red flower", to: "a blue flower", steps: 4, seed: 3 }) { id kind captions } }',
        )
      ).data!.interpolateCaptions;
      assert.equal(g.kind, 'CAPTION_INTERPOLATION');
      assert.deepEqual(g.captions, ['a red flower', 'a blue flower']);
      const last = (
        await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: g.id })
      ).at(-1)!.data!.generationUpdated;
      assert.equal(last.status, 'SUCCEEDED');
      assert.deepEqual(
        last.images.map((i: { mix: number }) => i.mix),
        [0, 1 / 3, 2 / 3, 1],
      );
      assert.ok(last.images.every((i: { seed: number }) => i.seed === 3));
      const { animationUrl } = (await gql(url, `{ generation(id: "${g.id}") { animationUrl } }`)).data!.generation;
      const anim = await fetch(origin + animationUrl);
      assert.equal(anim.status, 200);
      const apng = Buffer.from(await anim.arrayBuffer());
      assert.ok(apng.includes('acTL') && apng.includes('fdAT'), 'an animated PNG');
      assert.equal(decodePng(apng).width, 32);
      // a gallery of animations asked for at once, more than are made at once (8): each waits its turn, none is 503
      const gallery = await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const id = (
            await gql(
              url,
              `mutation { generateImages(input: { caption: "a red flower", count: 2, seed: ${100 + i} }) { id } }`,
            )
          ).data!.generateImages.id as string;
          await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { status } }`, { id });
          return (await gql(url, `{ generation(id: "${id}") { animationUrl } }`)).data!.generation
            .animationUrl as string;
        }),
      );
      const statuses = await Promise.all(gallery.map(async (u) => (await fetch(origin + u)).status));
      assert.deepEqual(statuses, Array(24).fill(200));
    });

    test('noise interpolation: one caption, z moving from z(fromSeed) to z(toSeed)', async () => {
      const g = (
        await gql(
          url,
          'mutation { interpolateNoise(input: { caption: "a red flower", fromSeed: 5, toSeed: 6, steps: 3 }) { id kind seed endSeed } }',
        )
      ).data!.interpolateNoise;
      assert.deepEqual([g.kind, g.seed, g.endSeed], ['NOISE_INTERPOLATION', 5, 6]);
      const same = 'mutation { interpolateNoise(input: { caption: "a red flower", fromSeed: 5, toSeed: 5 }) { id } }';
      assert.equal(codeOf(await gql(url, same)), 'BAD_USER_INPUT', 'one seed twice: nothing to move between');
      const last = (
        await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: g.id })
      ).at(-1)!.data!.generationUpdated;
      assert.deepEqual(
        last.images.map((i: { mix: number }) => i.mix),
        [0, 0.5, 1],
      );
      // its ends are the text-to-image images of the two seeds
      const ends = await Promise.all(
        [5, 6].map(async (seed) => {
          const t = (
            await gql(
              url,
              `mutation { generateImages(input: { caption: "a red flower", count: 1, seed: ${seed} }) { id } }`,
            )
          ).data!.generateImages;
          const done = (
            await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: t.id })
          ).at(-1)!.data!.generationUpdated;
          return decodePng(Buffer.from(await (await fetch(origin + done.images[0].url)).arrayBuffer())).rgb;
        }),
      );
      const pixels = async (i: number) =>
        decodePng(Buffer.from(await (await fetch(origin + last.images[i].url)).arrayBuffer())).rgb;
      assert.deepEqual(await pixels(0), ends[0]);
      assert.deepEqual(await pixels(2), ends[1]);
      assert.equal(
        codeOf(await gql(url, 'mutation { interpolateNoise(input: { caption: "", steps: 3 }) { id } }')),
        'BAD_USER_INPUT',
      );
    });

    test('style transfer: new captions drawn with S(image)', async () => {
      const src = (
        await gql(url, 'mutation { generateImages(input: { caption: "a pink flower", count: 1, seed: 9 }) { id } }')
      ).data!.generateImages;
      const done = (
        await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: src.id })
      ).at(-1)!.data!.generationUpdated;
      const imageId = done.images[0].id;
      const g = (
        await gql(
          url,
          `mutation { transferStyle(input: { imageId: "${imageId}", captions: ["a white flower", "a green flower"] }) { id kind seed imageCount styleImageId } }`,
        )
      ).data!.transferStyle;
      assert.equal(g.kind, 'STYLE_TRANSFER');
      assert.deepEqual([g.imageCount, g.styleImageId], [2, imageId]);
      const last = (
        await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: g.id })
      ).at(-1)!.data!.generationUpdated;
      assert.equal(last.status, 'SUCCEEDED');
      assert.deepEqual(
        last.images.map((i: { caption: string }) => i.caption),
        ['a white flower', 'a green flower'],
      );
      const img = await gql(url, `{ image(id: "${imageId}") { id generation { id kind } } }`);
      assert.equal(img.data!.image.generation.id, src.id);
    });

    test('style transfer from an uploaded PNG or JPEG; broken uploads are BAD_USER_INPUT', async () => {
      const canvas = createCanvas(40, 30);
      const c2d = canvas.getContext('2d');
      c2d.fillStyle = '#3a5';
      c2d.fillRect(0, 0, 40, 30);
      for (const [type, data] of [
        ['png', canvas.toBuffer('image/png')],
        ['jpeg', canvas.toBuffer('image/jpeg')],
      ] as const) {
        const g = (
          await gql(url, 'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
            i: { image: `data:image/${type};base64,${data.toString('base64')}`, captions: ['a red flower'] },
          })
        ).data!.transferStyle;
        const last = (
          await collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION} } }`, { id: g.id })
        ).at(-1)!.data!.generationUpdated;
        assert.equal(last.status, 'SUCCEEDED', type);
        assert.equal(last.images.length, 1);
      }
      const huge = Buffer.alloc(40);
      canvas.toBuffer('image/png').copy(huge, 0, 0, 40);
      huge.writeUInt32BE(100_000, 16); // a header claiming 100000 pixels wide
      const bad = [
        'not base64!',
        Buffer.from('hello').toString('base64'),
        huge.toString('base64'),
        canvas.toBuffer('image/png').subarray(0, 60).toString('base64'),
        'A'.repeat(800_000),
      ];
      const before = await count();
      for (const image of bad) {
        const r = await gql(url, 'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
          i: { image, captions: ['a'] },
        });
        assert.equal(codeOf(r), 'BAD_USER_INPUT', image.slice(0, 30));
        assert.equal(r.errors![0].extensions!.field, 'image', image.slice(0, 30));
      }
      assert.equal(
        codeOf(await gql(url, 'mutation { transferStyle(input: { captions: ["a"] }) { id } }')),
        'BAD_USER_INPUT',
      );
      assert.equal(await count(), before);
    });

    test("a page asked again is answered without a read until its owner's generations change, by any process", async () => {
      // nothing of this owner's under way (a worker's pass would change the page meanwhile)
      await until('the queue drained', async () => {
        const [{ n }] = await api.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "Generation" WHERE "status" IN ('QUEUED', 'RUNNING')`,
        );
        return n === 0;
      });
      const heard: string[] = [];
      const unlisten = await api.db.listen(CHANNELS.owners, (owner) => heard.push(owner));
      // a NOTIFY of what came before, late on a loaded machine, is heard before this one
      await api.db.query(`SELECT pg_notify('${CHANNELS.owners}', 'mark')`);
      await until('the mark heard', async () => heard.includes('mark'));
      heard.length = 0;
      let reads = 0;
      const { page } = GenerationService.prototype;
      GenerationService.prototype.page = function (...a) {
        reads++;
        return page.apply(this, a);
      };
      const PAGE = '{ generations(first: 5) { edges { node { id status error images { url } } } } }';
      const nodes = async () =>
        (await gql(url, PAGE)).data!.generations.edges.map((e: { node: unknown }) => e.node) as {
          id: string;
          error: string | null;
          images: { url: string }[];
        }[];
      try {
        const kept = async () =>
          (await api.metrics.pagesAnswered.get()).values.find((v) => v.labels.from === 'kept')?.value ?? 0;
        const first = await nodes();
        const [read, keptBefore] = [reads, await kept()];
        assert.deepEqual(await nodes(), first);
        assert.deepEqual(await nodes(), first);
        assert.equal(reads, read, 'asked again, read once');
        assert.equal(await kept(), keptBefore + 2, 'ganvas_generation_pages_total{from="kept"}');
        // another key's change (a generation made by hand, as another process would) leaves this owner's pages
        await api.db.query(`INSERT INTO "ApiKey" (id, name, "keyHash", "webhookSecret")
                            VALUES ('${OTHER_KEY}', 'other', 'page-test', 's')`);
        await api.db.query(BY_HAND, [OTHER_KEY]);
        await until('the other key heard', async () => heard.includes(OTHER_KEY));
        assert.deepEqual(await nodes(), first);
        assert.equal(reads, read, "another owner's change reads nothing again");
        // this owner's: a generation made, changed, given an image and its image deleted, then itself deleted, by
        // hand: each on the page once its NOTIFY comes (an instant)
        const [{ id }] = await api.db.query<{ id: string }>(BY_HAND, [null]);
        await until('a generation made by hand is on the page', async () => (await nodes())[0].id === id);
        await api.db.query(`UPDATE "Generation" SET "error" = 'changed by hand' WHERE "id" = $1::uuid`, [id]);
        await until('its change is on the page', async () => (await nodes())[0].error === 'changed by hand');
        await api.db.query(
          `INSERT INTO "Image" ("id", "generationId", "index", "width", "height", "caption", "seed", "token", "png")
           VALUES (gen_random_uuid(), $1, 0, 32, 32, 'by hand', 1, 'tok', '\\x00')`,
          [id],
        );
        await until('its image on the page', async () => (await nodes())[0].images.length === 1);
        await api.db.query(`DELETE FROM "Image" WHERE "generationId" = $1::uuid`, [id]);
        await until('its image gone from the page', async () => (await nodes())[0].images.length === 0);
        await api.db.query(`DELETE FROM "Generation" WHERE "id" = $1::uuid`, [id]);
        await until('gone from the page', async () => !(await nodes()).some((g) => g.id === id));
        assert.deepEqual(await nodes(), first);
        // one NOTIFY a statement and owner ('': open mode's), whichever rows it touched
        assert.deepEqual(heard, [OTHER_KEY, '', '', '', '', '']);
      } finally {
        GenerationService.prototype.page = page;
        await unlisten();
        await api.db.query(`DELETE FROM "ApiKey" WHERE "id" = '${OTHER_KEY}'`);
      }
    });

    test('generations: newest first, paged with cursors, filtered by status and kind', async () => {
      const all = (
        await gql(url, '{ generations(first: 100) { edges { node { id status kind createdAt } } } }')
      ).data!.generations.edges.map((e: { node: unknown }) => e.node);
      assert.ok(all.length >= 6);
      const times = all.map((n: { createdAt: string }) => Date.parse(n.createdAt));
      assert.deepEqual(
        times,
        [...times].sort((a, b) => b - a),
      );
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const page: any = (
          await gql(
            url,
            'query($a: String) { generations(first: 2, after: $a) { edges { cursor node { id } } ' +
              'pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }',
            { a: after },
          )
        ).data!.generations;
        assert.equal(page.pageInfo.hasPreviousPage, after !== null);
        assert.equal(page.pageInfo.startCursor, page.edges[0].cursor);
        seen.push(...page.edges.map((e: { node: { id: string } }) => e.node.id));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      assert.deepEqual(
        seen,
        all.map((n: { id: string }) => n.id),
      );
      const canceled = (await gql(url, '{ generations(status: CANCELED) { edges { node { status } } } }')).data!
        .generations.edges;
      assert.ok(
        canceled.length >= 1 && canceled.every((e: { node: { status: string } }) => e.node.status === 'CANCELED'),
      );
      const interp = (await gql(url, '{ generations(kind: CAPTION_INTERPOLATION) { edges { node { kind } } } }')).data!
        .generations.edges;
      assert.equal(interp.length, 1);
      // a page (asked through a fragment) shows each node, its images and animation as the generation reads alone
      const shown = `${GENERATION} animationUrl images { generation { id } }`;
      const paged = (
        await gql(url, `{ generations(first: 100) { edges { node { ...G } } } } fragment G on Generation { ${shown} }`)
      ).data!.generations.edges.map((e: { node: { id: string; images: unknown[] } }) => e.node);
      assert.ok(paged.some((g: { images: unknown[] }) => g.images.length > 1));
      for (const g of paged)
        assert.deepEqual(
          g,
          (await gql(url, `query($id: ID!) { generation(id: $id) { ${shown} } }`, { id: g.id })).data!.generation,
        );
      const noise = (await gql(url, '{ generations(kind: NOISE_INTERPOLATION) { edges { node { kind } } } }')).data!
        .generations.edges;
      assert.equal(noise.length, 1);
      // a page reads its images in its own statement, where the query asks for them (through fragments too), and
      // an image's generation is the one it was listed under: going round the cycle reads nothing again
      const reads = { generation: 0, images: 0, pages: [] as boolean[] };
      const { requireGeneration, imagesOf, pageQuery } = GenerationService.prototype;
      GenerationService.prototype.requireGeneration = function (...a) {
        reads.generation++;
        return requireGeneration.apply(this, a);
      };
      GenerationService.prototype.imagesOf = function (...a) {
        reads.images++;
        return imagesOf.apply(this, a);
      };
      GenerationService.prototype.pageQuery = function (...a) {
        reads.pages.push(a[2] ?? false);
        return pageQuery.apply(this, a);
      };
      try {
        const round = (
          await gql(
            url,
            '{ generations(first: 20) { edges { node { id images { generation { id images { id } } } } } } }',
          )
        ).data!.generations.edges.map((e: any) => e.node);
        for (const g of round) for (const i of g.images) assert.equal(i.generation.id, g.id);
        const spread =
          '{ generations { ...E } } fragment E on GenerationConnection { edges { node { ... on Generation { animationUrl } } } }';
        assert.ok((await gql(url, spread)).data!.generations.edges.some((e: any) => e.node.animationUrl));
        await gql(url, '{ generations { edges { node { id status } } } }');
        // images that @skip or @include leave out are not read either
        const skipped = await gql(
          url,
          'query($no: Boolean!) { generations { edges { node { id images @include(if: $no) { url } ...I @skip(if: true) } } } } fragment I on Generation { animationUrl }',
          { no: false },
        );
        assert.ok(skipped.data!.generations.edges.every((e: any) => !('images' in e.node || 'animationUrl' in e.node)));
        assert.deepEqual(reads, { generation: 0, images: 0, pages: [true, true, false, false] });
        // so does one generation; asked without them, it reads its row alone
        const one = await gql(
          url,
          'query($id: ID!) { generation(id: $id) { images { generation { id images { id } } } } }',
          {
            id: round[0].id,
          },
        );
        assert.deepEqual(one.data!.generation.images, round[0].images);
        await gql(url, 'query($id: ID!) { generation(id: $id) { status } }', { id: round[0].id });
        assert.deepEqual(reads, { generation: 1, images: 0, pages: [true, true, false, false] });
      } finally {
        Object.assign(GenerationService.prototype, { requireGeneration, imagesOf, pageQuery });
      }
    });
  });
}
