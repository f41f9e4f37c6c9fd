/**
 * Faults inside one API + worker process on Postgres: the inference thread dies (while drawing: that attempt fails;
 * before claiming: the worker claims nothing; it reports itself fatal either way, and another worker finishes the
 * jobs), and the LISTEN connection is killed while
 * many short generations are subscribed to (every subscription still completes), a pass G cannot draw is drawn
 * again one generation at a time, and a worker under a slow G holds two batches at most.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import pg from 'pg';
import { type Running, startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';
import { encodePng } from '../src/images/png.ts';

let url = '';
let drop: () => Promise<void>;
const started: Running[] = [];
let config: ReturnType<typeof testConfig>;

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  url = pgdb.url;
  config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url, leaseSeconds: 3 });
});

after(async () => {
  for (const r of started.reverse()) await r.stop().catch(() => {});
  await drop();
});

async function start(roles: { api: boolean; worker: boolean }, workerId: string): Promise<Running> {
  const r = await startServices({ ...config, workerId }, { ...roles, migrate: true, auth: 'open' }, silentLogger());
  started.push(r);
  return r;
}

const SUB = 'subscription($id: ID!) { generationUpdated(id: $id) { status images { index } } }';
/** A generation's last state as its subscription ends (within 20 s). */
const lastState = async (ws: ReturnType<typeof wsClient>, id: string) =>
  (
    await collect(
      ws,
      'subscription($id: ID!) { generationUpdated(id: $id) { status error images { index } } }',
      { id },
      20_000,
    )
  ).at(-1)!.data!.generationUpdated;

test('an inference thread that dies while drawing fails that attempt (counted) and the worker', async () => {
  const api = await start({ api: true, worker: false }, 'api-mid');
  const doomed = await start({ api: false, worker: true }, 'doomed-mid');
  const inference = doomed.inferences[0];
  const { thread } = (inference as unknown as { threads: { thread: Worker }[] }).threads[0];
  const draw = inference.draw.bind(inference);
  inference.draw = async (items) => {
    await thread.terminate(); // as if this pass crashed it
    await doomed.fatal;
    return draw(items);
  };
  const g = (
    await gql(api.api!.url, 'mutation { generateImages(input: { caption: "a deadly flower", count: 1 }) { id } }')
  ).data!.generateImages;
  assert.match((await doomed.fatal).message, /inference thread exited/);
  const jobOf = async () =>
    (
      await api.db.query<{ attempts: number; lockedBy: string | null; lastError: string | null }>(
        'SELECT "attempts", "lockedBy", "lastError" FROM "Job" WHERE "generationId" = $1',
        [g.id],
      )
    )[0];
  let job = await jobOf();
  for (let i = 0; i < 100 && job.lockedBy !== null; i++) {
    await new Promise((r) => setTimeout(r, 50)); // the worker records the attempt after the thread's exit
    job = await jobOf();
  }
  // handed back uncounted, a job that kills the thread would restart its workers for ever
  assert.deepEqual(job, {
    attempts: 1,
    lockedBy: null,
    lastError: 'the worker failed while drawing this generation (the details are in its log)',
  });
  await doomed.stop();
  started.splice(started.indexOf(doomed), 1);
});

test('a dead inference thread: the worker stops claiming and is fatal; another worker finishes its jobs', async () => {
  const api = await start({ api: true, worker: false }, 'api');
  const doomed = await start({ api: false, worker: true }, 'doomed');
  // as if it crashed
  await (doomed.inferences[0] as unknown as { threads: { thread: Worker }[] }).threads[0].thread.terminate();
  const fatal = await doomed.fatal;
  assert.match(fatal.message, /inference thread exited/);
  const g = (
    await gql(api.api!.url, 'mutation { generateImages(input: { caption: "a red flower", count: 2 }) { id } }')
  ).data!.generateImages;
  await new Promise((r) => setTimeout(r, 1500)); // the doomed worker would have claimed it by now if it still claimed
  const [job] = await api.db.query<{ attempts: number; lockedBy: string | null }>(
    'SELECT "attempts", "lockedBy" FROM "Job" WHERE "generationId" = $1',
    [g.id],
  );
  assert.deepEqual(job, { attempts: 0, lockedBy: null });
  await start({ api: false, worker: true }, 'healthy');
  const ws = wsClient(api.api!.url);
  const last = (await collect(ws, SUB, { id: g.id })).at(-1)!.data!.generationUpdated;
  await ws.dispose();
  assert.equal(last.status, 'SUCCEEDED');
});

test('the LISTEN connection killed while 40 short generations are subscribed to: every subscription completes', async () => {
  const api = started.find((r) => r.api)!;
  const ws = wsClient(api.api!.url);
  const ids: string[] = [];
  for (let i = 0; i < 40; i++)
    ids.push(
      (await gql(api.api!.url, `mutation { generateImages(input: { caption: "flower ${i}", count: 1 }) { id } }`)).data!
        .generateImages.id,
    );
  const all = Promise.all(ids.map((id) => collect(ws, SUB, { id }, 30_000)));
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  for (let k = 0; k < 3; k++) {
    await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`,
    );
    await new Promise((r) => setTimeout(r, 150));
  }
  await admin.end();
  const finals = (await all).map((events) => events.at(-1)!.data!.generationUpdated.status);
  await ws.dispose();
  assert.deepEqual(new Set(finals), new Set(['SUCCEEDED']));
});

test('a generation that cannot be drawn fails alone and at once, with a message for users; its batch-mates succeed', async () => {
  const api = started.find((r) => r.api)!;
  // queue both before any worker claims
  for (const r of started.filter((x) => x.workers.length > 0 && !x.api)) await r.stop().catch(() => {});
  const png = encodePng(new Uint8Array(16 * 16 * 3).fill(90), 16, 16).toString('base64');
  const bad = (
    await gql(api.api!.url, 'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
      i: { image: png, captions: ['a red flower'] },
    })
  ).data!.transferStyle;
  const good = (
    await gql(api.api!.url, 'mutation { generateImages(input: { caption: "a blue flower", count: 2 }) { id } }')
  ).data!.generateImages;
  await api.db.query(`UPDATE "Generation" SET "stylePng" = '\\x00010203' WHERE "id" = $1`, [bad.id]);
  // every attempt would fail the same way: it is not retried (30 attempts, 2 s more apart each, would take 15 min)
  await api.db.query(`UPDATE "Job" SET "maxAttempts" = 30 WHERE "generationId" = $1`, [bad.id]);
  await start({ api: false, worker: true }, 'batch');
  const ws = wsClient(api.api!.url);
  const [badLast, goodLast] = await Promise.all([bad.id, good.id].map((id) => lastState(ws, id)));
  await ws.dispose();
  assert.equal(goodLast.status, 'SUCCEEDED');
  assert.equal(badLast.status, 'FAILED');
  assert.match(badLast.error, /style image could not be read/);
  assert.doesNotMatch(badLast.error, /\/work|\.ts:|at /);
});

test('a pass G cannot draw is drawn again one generation at a time: only the one that breaks it fails', async () => {
  const api = started.find((r) => r.api) ?? (await start({ api: true, worker: false }, 'api-alone'));
  for (const r of started.filter((x) => x.workers.length > 0 && !x.api)) await r.stop().catch(() => {});
  // queued before a worker claims: one batch, one pass of 3 + 2 images; neither is given a second attempt
  const ask = async (caption: string, count: number) =>
    (await gql(api.api!.url, `mutation { generateImages(input: { caption: "${caption}", count: ${count} }) { id } }`))
      .data!.generateImages.id as string;
  const breaking = await ask('a flower G cannot draw', 3);
  const mate = await ask('its batch-mate', 2);
  await api.db.query(`UPDATE "Job" SET "maxAttempts" = 1 WHERE "generationId" = ANY($1::uuid[])`, [[breaking, mate]]);
  const w = await start({ api: false, worker: true }, 'alone');
  const inference = w.inferences[0];
  const draw = inference.draw.bind(inference);
  const sizes: number[] = [];
  inference.draw = async (items) => {
    sizes.push(items.length);
    if (items.length !== 2) throw new Error('G broke on this pass'); // any pass holding the 3 images
    return draw(items);
  };
  const ws = wsClient(api.api!.url);
  const [broken, drawn] = await Promise.all([breaking, mate].map((id) => lastState(ws, id)));
  await ws.dispose();
  assert.deepEqual(sizes, [5, 3, 2], 'the pass, then each generation of it alone');
  assert.equal(broken.status, 'FAILED');
  assert.match(broken.error, /the worker failed while drawing this generation/);
  assert.equal(drawn.status, 'SUCCEEDED');
  assert.equal(drawn.images.length, 2);
});

test('a worker holds at most two batches: one drawing its last pass, the next claimed to overlap it', async () => {
  const api = started.find((r) => r.api) ?? (await start({ api: true, worker: false }, 'api-hoard'));
  for (const r of started.filter((x) => x.workers.length > 0 && !x.api)) await r.stop().catch(() => {});
  // one-pass batches (4 jobs of 2 images: maxBatch 8) with one caption (phi is drawn once), queued before a worker
  const ids: string[] = [];
  for (let i = 0; i < 24; i++)
    ids.push(
      (
        await gql(
          api.api!.url,
          `mutation { generateImages(input: { caption: "a hoarded flower", count: 2, seed: ${i} }) { id } }`,
        )
      ).data!.generateImages.id,
    );
  const w = await start({ api: false, worker: true }, 'hoarder');
  const inference = w.inferences[0];
  const draw = inference.draw.bind(inference);
  let open!: () => void;
  const latch = new Promise<void>((r) => (open = r));
  inference.draw = async (items) => {
    await latch; // G is slow: every pass from here waits
    return draw(items);
  };
  let n: number;
  try {
    await new Promise((r) => setTimeout(r, 1500));
    [{ n }] = await api.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "Job" WHERE "lockedBy" LIKE 'hoarder/%'`,
    );
  } finally {
    open(); // else its batches never end, nor the worker
  }
  // a worker that claimed every batch it could send would hold all that is left, leaving other workers idle
  assert.ok(n > 0 && n <= 2 * config.maxJobs, `${n} jobs held`);
  const ws = wsClient(api.api!.url);
  const finals = await Promise.all(
    ids.map(async (id) => (await collect(ws, SUB, { id }, 30_000)).at(-1)!.data!.generationUpdated.status),
  );
  await ws.dispose();
  assert.deepEqual(new Set(finals), new Set(['SUCCEEDED']));
});
