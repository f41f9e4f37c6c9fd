/**
 * Queue position and expected times on Postgres: the place follows the fair order across keys, moves (and is
 * pushed to subscribers) as work ahead leaves, and estimates appear once the model has a measured rate and a worker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiKey } from '../src/auth/keys.ts';
import { heartbeat } from '../src/queue/workers.ts';
import { modelLoads, queuePlaces } from '../src/queue/queue.ts';
import type { Config } from '../src/config.ts';
import { silentLogger } from '../src/ops/log.ts';
import { type Running, startServices } from '../src/services.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';

let api: Running;
let config: Config;
let drop: () => Promise<void>;
const keys: Record<'a' | 'b', string> = { a: '', b: '' };

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url });
  api = await startServices(config, { api: true, worker: false, migrate: true, auth: 'keys' }, silentLogger());
  keys.a = (await createApiKey(api.db.prisma, 'a')).key;
  keys.b = (await createApiKey(api.db.prisma, 'b')).key;
});

after(async () => {
  await api?.stop();
  await drop?.();
});

const q = (key: string, query: string, variables: Record<string, unknown> = {}) =>
  gql(api.api!.url, query, variables, key);
const create = async (key: string, count = 2): Promise<string> =>
  (await q(key, 'mutation($n: Int) { generateImages(input: { caption: "a flower", count: $n }) { id } }', { n: count }))
    .data!.generateImages.id;
const ESTIMATE = 'query($id: ID!) { generation(id: $id) { status queuePosition estimatedStartAt estimatedFinishAt } }';
const estimate = async (key: string, id: string) => (await q(key, ESTIMATE, { id })).data!.generation;

test('places follow the fair order across keys and move, pushed to subscribers, as work ahead leaves', async () => {
  const a1 = await create(keys.a);
  const a2 = await create(keys.a);
  const a3 = await create(keys.a);
  const b1 = await create(keys.b);
  assert.deepEqual(
    await Promise.all([estimate(keys.a, a1), estimate(keys.b, b1), estimate(keys.a, a2), estimate(keys.a, a3)]).then(
      (es) => es.map((e) => e.queuePosition),
    ),
    [0, 1, 2, 3],
  );
  const first = await estimate(keys.a, a1);
  assert.equal(first.estimatedStartAt, null, 'no rate measured yet');

  const ws = wsClient(api.api!.url, keys.a);
  const positions: (number | null)[] = [];
  const followed = new Promise<void>((resolve, reject) => {
    ws.subscribe(
      {
        query: 'subscription($id: ID!) { generationUpdated(id: $id) { status queuePosition } }',
        variables: { id: a3 },
      },
      {
        next: (e) => {
          const g = (e.data as { generationUpdated: { status: string; queuePosition: number | null } })
            .generationUpdated;
          positions.push(g.queuePosition);
          if (g.status === 'SUCCEEDED') resolve();
        },
        error: reject,
        complete: () => resolve(),
      },
    );
  });
  // its first event (the place now) before the cancel moves it up
  for (let i = 0; positions.length === 0; i++) {
    assert.ok(i < 100, 'a first event');
    await new Promise((r) => setTimeout(r, 100));
  }
  await q(keys.a, 'mutation($id: ID!) { cancelGeneration(id: $id) { id } }', { id: a1 });
  const deadline = Date.now() + 10_000;
  while (!positions.includes(2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(positions.slice(0, 2), [3, 2], `pushed places: ${positions.join(', ')}`);

  const worker = await startServices(
    { ...config, workerId: 'w1' },
    { api: false, worker: true, migrate: false },
    silentLogger(),
  );
  try {
    await followed;
    assert.equal(positions.at(-1), null, 'no place once it is drawn');
  } finally {
    await worker.stop();
  }
  // the model has a rate now, but no worker: nothing to estimate
  const ahead = await create(keys.a, 8);
  assert.deepEqual(
    (await q(keys.a, 'query($id: ID!) { generation(id: $id) { waitingFor estimatedStartAt } }', { id: ahead })).data!
      .generation,
    { waitingFor: 'MODEL', estimatedStartAt: null },
  );
  // a worker is live again (busy elsewhere: only its heartbeat): new work waits behind work of the same model
  await heartbeat(api.db.prisma, { workerId: 'w2', maxJobs: 4 }, ['tiny']);
  const behind = await create(keys.a, 8);
  const [e2, e1] = [await estimate(keys.a, behind), await estimate(keys.a, ahead)];
  await ws.dispose();
  assert.equal(e2.queuePosition, 1);
  assert.ok(
    e1.estimatedStartAt && e1.estimatedFinishAt && e2.estimatedStartAt && e2.estimatedFinishAt,
    JSON.stringify(e2),
  );
  assert.ok(new Date(e1.estimatedFinishAt) < new Date(e2.estimatedFinishAt));
  assert.ok(new Date(e2.estimatedStartAt) <= new Date(e2.estimatedFinishAt));
  assert.ok(new Date(e2.estimatedStartAt).getTime() >= Date.now() - 5_000);
  // a running generation whose job waits out a retry's delay: its images count once, as running, not also as queued
  await api.db.query(`UPDATE "Generation" SET "status" = 'RUNNING', "startedAt" = now() WHERE "id" = $1`, [ahead]);
  await api.db.query(
    `UPDATE "Job" SET "attempts" = 1, "runAt" = now() + interval '1 minute' WHERE "generationId" = $1`,
    [ahead],
  );
  const place = (await queuePlaces(api.db.prisma)).find((p) => p.generationId === behind)!;
  const load = (await modelLoads(api.db.prisma)).find((l) => l.model === 'tiny')!;
  assert.deepEqual([place.position, place.imagesAhead, load.runningImages], [0, 0, 8]);
});

test('requests made at once each answer their place while QUEUED, none null; a running one finishes ahead of now', async () => {
  const made = await Promise.all(
    Array.from({ length: 12 }, () =>
      q(keys.b, 'mutation { generateImages(input: { caption: "a flower", count: 16 }) { id status queuePosition } }'),
    ),
  );
  const answers = made.map((r) => r.data!.generateImages as { id: string; status: string; queuePosition: number });
  assert.ok(
    answers.every((g) => g.status === 'QUEUED' && g.queuePosition !== null),
    JSON.stringify(answers.map((g) => g.queuePosition)),
  );
  assert.equal(new Set(answers.map((g) => g.queuePosition)).size, 12, 'each its own place');
  // a RUNNING one's finish is counted from now (its progress is now's), not from a snapshot up to 2 s old
  const running = answers[0].id;
  await api.db.query(`UPDATE "Generation" SET "status" = 'RUNNING', "startedAt" = now() WHERE "id" = $1`, [running]);
  await new Promise((r) => setTimeout(r, 1500)); // the snapshot ages
  const asked = Date.now();
  const e = await estimate(keys.b, running);
  assert.equal(e.status, 'RUNNING');
  assert.ok(
    new Date(e.estimatedFinishAt).getTime() >= asked,
    `${e.estimatedFinishAt} is before ${new Date(asked).toISOString()}`,
  );
});

test('a generation handed back to the queue (RUNNING, then QUEUED again) has its place pushed again', async () => {
  const { key } = await createApiKey(api.db.prisma, 'handed back');
  await create(key, 1); // work ahead of it, whatever else is queued
  const g = await create(key, 1);
  const events: { status: string; queuePosition: number | null }[] = [];
  const ws = wsClient(api.api!.url, key);
  const stop = ws.subscribe(
    { query: 'subscription($id: ID!) { generationUpdated(id: $id) { status queuePosition } }', variables: { id: g } },
    {
      next: (e) => void events.push((e.data as { generationUpdated: (typeof events)[0] }).generationUpdated),
      error: () => {},
      complete: () => {},
    },
  );
  const seen = async (test: (e: (typeof events)[0]) => boolean, what: string) => {
    for (const deadline = Date.now() + 10_000; !events.some(test); await new Promise((r) => setTimeout(r, 50)))
      if (Date.now() > deadline) assert.fail(`no ${what} event: ${JSON.stringify(events)}`);
  };
  try {
    await seen((e) => e.status === 'QUEUED', 'first');
    // a worker's claim starts it, then its hand-back at shutdown puts it back (queue.ts claim and release)
    for (const status of ['RUNNING', 'QUEUED']) {
      const at = events.length; // before the change: its event may come before the NOTIFY's query returns
      await api.db.query(`UPDATE "Generation" SET "status" = $2::"GenerationStatus" WHERE "id" = $1`, [g, status]);
      await api.db.query(`SELECT pg_notify('ganvas_generation', $1)`, [g]);
      await seen((e) => events.indexOf(e) >= at && e.status === status, status);
    }
    const place = events.at(-1)!.queuePosition!;
    assert.ok(place > 0, `its own first request is ahead of it: ${place}`);
    await api.db.query(`DELETE FROM "Job" WHERE "generationId" <> $1`, [g]); // the work ahead leaves
    await seen((e) => e.status === 'QUEUED' && e.queuePosition === 0, 'new place');
  } finally {
    stop();
    await ws.dispose();
  }
});
