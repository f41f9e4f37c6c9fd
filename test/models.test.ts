/**
 * Several models at once, on Postgres: a worker serves every checkpoint MODEL_DIR lists and registers them
 * with a heartbeat; `models` lists the catalog with live workers; a request for a model nobody serves waits
 * (waitingFor MODEL) and runs once a worker for it starts, without an API restart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../src/config.ts';
import pino from 'pino';
import { silentLogger } from '../src/ops/log.ts';
import { type Running, startServices } from '../src/services.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { codeOf, collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';
import { until } from './support/until.ts';

let api: Running;
let config: Config;
let drop: () => Promise<void>;
let dirs: { a: string; b: string };
const workers: Running[] = [];

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  dirs = { a: await tinyModelDir('tiny'), b: await tinyModelDir('tiny-b') };
  await writeFile(
    join(dirs.b, 'MODEL_CARD.md'),
    '# Model card\n\nA second **tiny** model `tiny-b`,\nfor [tests](../test).\n\n## More\n',
  );
  config = testConfig(dirs.a, { databaseUrl: pgdb.url });
  api = await startServices(config, { api: true, worker: false, migrate: true, auth: 'open' }, silentLogger());
});

after(async () => {
  for (const w of workers) await w.stop().catch(() => {});
  await api?.stop();
  await drop?.();
});

const q = (query: string, variables: Record<string, unknown> = {}) => gql(api.api!.url, query, variables);
const startWorker = async (id: string, modelDirs: string[]) => {
  const w = await startServices(
    { ...config, workerId: id, modelDirs },
    { api: false, worker: true, migrate: false },
    silentLogger(),
  );
  workers.push(w);
  return w;
};
const models = async (served = false) =>
  (
    await q('query($s: Boolean!) { models(served: $s) { name workers isDefault summary captionCharacters } }', {
      s: served,
    })
  ).data!.models as { name: string; workers: number; isDefault: boolean; summary: string; captionCharacters: number }[];
const generate = async (model: string) =>
  (await q('mutation($m: String) { generateImages(input: { caption: "a flower", model: $m }) { id } }', { m: model }))
    .data!.generateImages.id as string;
const state = async (id: string) =>
  (await q('query($id: ID!) { generation(id: $id) { status waitingFor model } }', { id })).data!.generation;

test('one worker serves two models; models lists the catalog with its live workers', async () => {
  assert.deepEqual(await models(), [{ name: 'tiny', workers: 0, isDefault: true, summary: '', captionCharacters: 64 }]);
  const both = await startWorker('both', [dirs.a, dirs.b]);
  await until('two models, one worker each', async () => (await models(true)).length === 2);
  assert.deepEqual(await models(), [
    { name: 'tiny', workers: 1, isDefault: true, summary: '', captionCharacters: 64 },
    {
      name: 'tiny-b',
      workers: 1,
      isDefault: false,
      summary: 'A second tiny model tiny-b, for tests.',
      captionCharacters: 64,
    },
  ]);
  const id = await generate('tiny-b');
  const ws = wsClient(api.api!.url);
  const last = (await collect(ws, 'subscription($id: ID!) { generationUpdated(id: $id) { status model } }', { id })).at(
    -1,
  )!.data!.generationUpdated;
  await ws.dispose();
  assert.deepEqual(last, { status: 'SUCCEEDED', model: 'tiny-b' });
  await both.stop();
  workers.length = 0;
  await until('no live worker once it stopped', async () => (await models(true)).length === 0);
  assert.equal(
    codeOf(await q('mutation { generateImages(input: { caption: "x", model: "nope" }) { id } }')),
    'BAD_USER_INPUT',
  );
});

test('a model nobody serves: its requests wait (waitingFor MODEL) and run once a worker for it starts', async () => {
  const id = await generate('tiny-b');
  await until('waiting for its model', async () => (await state(id)).waitingFor === 'MODEL');
  await startWorker('only-a', [dirs.a]);
  const other = await generate('tiny');
  await until('the other model is drawn', async () => (await state(other)).status === 'SUCCEEDED');
  assert.deepEqual(await state(id), { status: 'QUEUED', waitingFor: 'MODEL', model: 'tiny-b' });
  await startWorker('only-b', [dirs.b]);
  await until('drawn by the new worker', async () => (await state(id)).status === 'SUCCEEDED');
  assert.equal((await state(id)).waitingFor, null);
});

test('a worker that stopped beating counts as gone after 30 s', async () => {
  await until('two live models', async () => (await models(true)).length === 2);
  await api.db.query(
    `UPDATE "ModelWorker" SET "heartbeatAt" = now() - interval '31 seconds' WHERE "workerId" = 'only-b'`,
  );
  await until('tiny-b has no live worker', async () =>
    (await models()).some((m) => m.name === 'tiny-b' && m.workers === 0),
  );
});

test('style from an image whose model left the catalog, no model named: BAD_USER_INPUT naming that model', async () => {
  const id = await generate('tiny-b');
  await until('drawn', async () => (await state(id)).status === 'SUCCEEDED');
  const imageId = (await q('query($id: ID!) { generation(id: $id) { images { id } } }', { id })).data!.generation
    .images[0].id as string;
  for (const w of workers.splice(0)) await w.stop();
  await api.db.query(`DELETE FROM "ModelWorker" WHERE "model" = 'tiny-b'`);
  await api.db.query(`DELETE FROM "Model" WHERE "name" = 'tiny-b'`);
  const transfer = () =>
    q('mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
      i: { imageId, captions: ['a blue flower'] },
    });
  // the API reads the catalog anew within seconds
  await until('the catalog read again', async () => (await transfer()).errors?.[0].message.includes('tiny-b') ?? false);
  const refused = await transfer();
  assert.equal(refused.errors![0].extensions!.code, 'BAD_USER_INPUT');
  assert.equal(
    refused.errors![0].message,
    `image ${imageId} was drawn by model "tiny-b", which is no longer in the catalog (Query.models); name one with model`,
  );
});

test('no model named while the default is not registered yet: SERVICE_UNAVAILABLE, send again soon', async () => {
  await api.db.query(`DELETE FROM "ModelWorker" WHERE "model" = 'tiny'`);
  await api.db.query(`DELETE FROM "Model" WHERE "name" = 'tiny'`);
  const ask = () => q('mutation { generateImages(input: { caption: "a flower" }) { id } }');
  // the API reads the catalog anew within seconds
  await until('the catalog read again', async () => codeOf(await ask()) !== undefined);
  const refused = await ask();
  assert.equal(codeOf(refused), 'SERVICE_UNAVAILABLE');
  assert.equal(refused.errors![0].extensions!.retryAfterSeconds, 5);
  assert.match(refused.errors![0].message, /no default model "tiny" yet/);
});

test('an API whose MODEL_DIR names a folder without a checkpoint says so as it starts (a typo would wait for ever)', async () => {
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg) });
  const typo = await startServices(
    { ...config, modelDirs: [dirs.a, 'models/nope'], port: 0 },
    { api: true, worker: false, migrate: false, auth: 'open' },
    log,
  );
  await typo.stop();
  assert.deepEqual(
    warnings.filter((w) => w.startsWith('MODEL_DIR')),
    [
      `MODEL_DIR: no checkpoint at ${join(process.cwd(), 'models/nope')} here: model "nope" is served once a worker of ` +
        'it registers, and until then a request for it is answered SERVICE_UNAVAILABLE (a typo in MODEL_DIR?)',
    ],
  );
});
