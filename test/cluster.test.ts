/**
 * ganvas as separate processes on one Postgres: two API instances and workers. A subscriber on one API
 * sees the work a worker did for a request made on the other; a worker killed with SIGKILL mid-job
 * loses nothing: its jobs return to the queue when its lease lapses and another worker finishes them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { initBackend } from '../src/model/backend.ts';
import { saveCheckpoint } from '../src/model/checkpoint.ts';
import { defaultModelConfig } from '../src/model/config.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { createApiKey } from '../src/auth/keys.ts';
import { freshPostgres } from './support/db.ts';
import { collect, gql, wsClient } from './support/graphql.ts';
import { ProcessGroup } from './support/processes.ts';

let drop: () => Promise<void>;
let databaseUrl = '';
let group: ProcessGroup;
let apiA = '';
let apiB = '';
let apiKey = '';
const q = (url: string, query: string) => gql(url, query, {}, apiKey);

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  databaseUrl = pgdb.url;
  const db = await openDatabase({ url: pgdb.url });
  await migrate(db);
  await db.close();
  // a 64x64 model of the default width: slow enough per image that a worker can be killed mid-job
  await initBackend('wasm');
  const modelDir = join(await mkdtemp(join(tmpdir(), 'ganvas-cluster-')), 'wide');
  const model = buildModel(defaultModelConfig({ ngf: 64, ndf: 8, nef: 8, embedDim: 128 }), 1, false);
  await saveCheckpoint(modelDir, model, { steps: { text: 0, gan: 0, style: 0 } }, { dtype: 'float16' });
  disposeModel(model);
  group = new ProcessGroup({
    DATABASE_URL: pgdb.url,
    MODEL_DIR: modelDir,
    PORT: '0',
    HOST: '127.0.0.1',
    GANVAS_BACKEND: 'wasm',
    WORKER_MAX_BATCH: '1',
    WORKER_MAX_JOBS: '2',
    WORKER_LEASE_SECONDS: '3',
  });
  // npm run api requires keys: one for the tests
  const { key } = await (async () => {
    const d = await openDatabase({ url: pgdb.url });
    try {
      return await createApiKey(d.prisma, 'cluster test');
    } finally {
      await d.close();
    }
  })();
  apiKey = key;
  [apiA, apiB] = (await Promise.all([group.api(), group.api()])).map((a) => a.url);
});

after(async () => {
  await group.killAll();
  await drop();
});

/** Polls until one of the running generations has stored an image. */
async function untilSomeProgress(): Promise<void> {
  for (;;) {
    const p = (await q(apiB, '{ generations(first: 100, status: RUNNING) { edges { node { progress } } } }')).data!
      .generations.edges;
    if (p.some((e: { node: { progress: number } }) => e.node.progress > 0)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a subscriber on API B sees a request made on API A finish, done by a worker process', async () => {
  const worker = await group.worker('w-sub');
  const g = (
    await q(apiA, 'mutation { generateImages(input: { caption: "a yellow flower", count: 2, seed: 1 }) { id } }')
  ).data!.generateImages;
  const ws = wsClient(apiB, apiKey);
  const events = await collect(
    ws,
    'subscription($id: ID!) { generationUpdated(id: $id) { status images { index } } }',
    { id: g.id },
  );
  await ws.dispose();
  const last = events.at(-1)!.data!.generationUpdated;
  assert.equal(last.status, 'SUCCEEDED');
  assert.equal(last.images.length, 2);
  await worker.kill('SIGTERM');
});

test('a running generation canceled stops before its next image', async () => {
  const worker = await group.worker('w-cancel');
  const g = (
    await q(apiA, 'mutation { generateImages(input: { caption: "a green flower", count: 16, seed: 2 }) { id } }')
  ).data!.generateImages;
  for (;;) {
    const now = (await q(apiB, `{ generation(id: "${g.id}") { status progress } }`)).data!.generation;
    if (now.progress > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const canceled = (await q(apiB, `mutation { cancelGeneration(id: "${g.id}") { status } }`)).data!.cancelGeneration;
  assert.equal(canceled.status, 'CANCELED');
  const count = async () =>
    (await q(apiA, `{ generation(id: "${g.id}") { status images { index } } }`)).data!.generation;
  const right = await count();
  await new Promise((r) => setTimeout(r, 1500));
  const later = await count();
  assert.equal(later.status, 'CANCELED');
  assert.ok(later.images.length < 16, `all ${later.images.length} images were made`);
  assert.ok(later.images.length <= right.images.length + 1, 'at most the image in flight is stored after the cancel');
  await worker.kill('SIGTERM');
});

test('a worker killed with SIGKILL mid-job: its jobs finish on another worker, nothing lost or duplicated', async () => {
  const w1 = await group.worker('w-doomed');
  const submitted: { id: string; count: number }[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await q(
      apiA,
      `mutation { generateImages(input: { caption: "flower ${i}", count: 16, seed: ${i} }) { id } }`,
    );
    submitted.push({ id: r.data!.generateImages.id, count: 16 });
  }
  // kill it once it has stored some images but not all
  await untilSomeProgress();
  await w1.kill('SIGKILL');
  const killedAt = Date.now();
  const w2 = await group.worker('w-rescue');

  let finals: { id: string; status: string; images: { index: number }[] }[] = [];
  while (Date.now() - killedAt < 120_000) {
    finals = await Promise.all(
      submitted.map(
        async (s) => (await q(apiB, `{ generation(id: "${s.id}") { id status images { index } } }`)).data!.generation,
      ),
    );
    if (finals.every((f) => f.status === 'SUCCEEDED')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const completed = finals.filter((f) => f.status === 'SUCCEEDED').length;
  const duplicated = finals.reduce((n, f) => n + f.images.length - new Set(f.images.map((i) => i.index)).size, 0);
  const lost = submitted.length - completed;
  const seconds = (Date.now() - killedAt) / 1000;
  console.log(
    `worker SIGKILL: submitted ${submitted.length}, completed ${completed}, duplicated ${duplicated}, lost ${lost}, all done ${seconds.toFixed(1)} s after the kill`,
  );
  assert.equal(lost, 0);
  assert.equal(duplicated, 0);
  assert.ok(finals.every((f) => f.images.length === 16));
  await w2.kill('SIGTERM');
});

test('SIGTERM: a worker finishes the batch in hand and exits; the rest is done by another, once', async () => {
  const w1 = await group.worker('w-term');
  const ids: string[] = [];
  for (let i = 0; i < 4; i++)
    ids.push(
      (await q(apiA, `mutation { generateImages(input: { caption: "term ${i}", count: 8, seed: ${i} }) { id } }`)).data!
        .generateImages.id,
    );
  await untilSomeProgress();
  const t0 = Date.now();
  await w1.kill('SIGTERM');
  console.log(
    `SIGTERM: worker exited ${((Date.now() - t0) / 1000).toFixed(1)} s after the signal, code ${w1.child.exitCode}`,
  );
  assert.equal(w1.child.exitCode, 0);
  const w2 = await group.worker('w-after-term');
  let finals: { status: string; images: { index: number }[] }[] = [];
  for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
    finals = await Promise.all(
      ids.map(
        async (id) => (await q(apiA, `{ generation(id: "${id}") { status images { index } } }`)).data!.generation,
      ),
    );
    if (finals.every((f) => f.status === 'SUCCEEDED')) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const completed = finals.filter((f) => f.status === 'SUCCEEDED').length;
  const duplicated = finals.reduce((n, f) => n + f.images.length - new Set(f.images.map((i) => i.index)).size, 0);
  console.log(
    `worker SIGTERM: submitted ${ids.length}, completed ${completed}, duplicated ${duplicated}, lost ${ids.length - completed}`,
  );
  assert.ok(
    finals.every(
      (f) => f.status === 'SUCCEEDED' && f.images.length === 8 && new Set(f.images.map((i) => i.index)).size === 8,
    ),
  );
  await w2.kill('SIGTERM');
});

test('a job that cannot be drawn ends FAILED with its error on its first attempt; a transfer outlives its source', async () => {
  const worker = await group.worker('w-fail');
  const src = (await q(apiA, 'mutation { generateImages(input: { caption: "source", count: 1 }) { id } }')).data!
    .generateImages;
  for (;;) {
    const g = (await q(apiA, `{ generation(id: "${src.id}") { status images { id } } }`)).data!.generation;
    if (g.status === 'SUCCEEDED') {
      await worker.kill('SIGTERM');
      const transfer = async () =>
        (await q(apiA, `mutation { transferStyle(input: { imageId: "${g.images[0].id}", captions: ["a"] }) { id } }`))
          .data!.transferStyle.id as string;
      const [kept, broken] = [await transfer(), await transfer()];
      const db = await openDatabase({ url: databaseUrl });
      // the source image is deleted after the transfers are queued: they carry its pixels
      await db.query('DELETE FROM "Image" WHERE "id" = $1', [g.images[0].id]);
      // one's copy is made unreadable: every attempt would fail the same way, so it is not tried again
      await db.query(`UPDATE "Generation" SET "stylePng" = '\\x00010203' WHERE "id" = $1`, [broken]);
      await db.close();
      const w2 = await group.worker('w-fail-2');
      const finalOf = async (id: string) =>
        (await q(apiA, `{ generation(id: "${id}") { status error } }`)).data!.generation;
      /** The generation once it has ended (or as it is after a minute). */
      const ended = async (id: string) => {
        let g = { status: '', error: '' };
        for (
          const deadline = Date.now() + 60_000;
          Date.now() < deadline && !['SUCCEEDED', 'FAILED', 'CANCELED'].includes(g.status);
          await new Promise((r) => setTimeout(r, 250))
        )
          g = await finalOf(id);
        return g;
      };
      const final = await ended(broken);
      assert.equal(final.status, 'FAILED');
      assert.match(final.error, /style image could not be read/);
      assert.equal(
        (w2.output().match(new RegExp(`"generation":"${broken}","attempt":\\d,"of":3`, 'g')) ?? []).length,
        1,
      ); // one attempt logged
      assert.equal((await ended(kept)).status, 'SUCCEEDED'); // it may still be drawing: the broken one failed at once
      await w2.kill('SIGTERM');
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
});

test('two API instances and two workers serve the same clients correctly', async () => {
  const workers = await Promise.all(['w-pair-1', 'w-pair-2'].map((id) => group.worker(id)));
  const ids: string[] = [];
  for (let i = 0; i < 10; i++)
    ids.push(
      (
        await q(
          i % 2 ? apiA : apiB,
          `mutation { generateImages(input: { caption: "pair ${i}", count: 4, seed: ${i} }) { id } }`,
        )
      ).data!.generateImages.id,
    );
  const ws = [wsClient(apiA, apiKey), wsClient(apiB, apiKey)];
  const finals = await Promise.all(
    ids.map(
      async (id, i) =>
        (
          await collect(
            ws[(i + 1) % 2],
            'subscription($id: ID!) { generationUpdated(id: $id) { status images { index } } }',
            { id },
          )
        ).at(-1)!.data!.generationUpdated,
    ),
  );
  await Promise.all(ws.map((c) => c.dispose()));
  assert.ok(
    finals.every(
      (f) =>
        f.status === 'SUCCEEDED' &&
        f.images.length === 4 &&
        new Set(f.images.map((i: { index: number }) => i.index)).size === 4,
    ),
  );
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
});
