/**
 * The job queue and the generation service called directly on Postgres (no API): fair claims across keys,
 * leases fencing every change, attempts capped at claim time; a worker claiming a full pass ahead of its
 * inference, and waiting for a pass's worth otherwise; a model's drawing rate.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createApiKey, revokeApiKey } from '../src/auth/keys.ts';
import { type Database, openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { ModelCatalog } from '../src/generations/models.ts';
import { modelEntry } from '../src/model/checkpoint-meta.ts';
import { heartbeat, registerModels } from '../src/queue/workers.ts';
import { GenerationService } from '../src/generations/service.ts';
import { Admission } from '../src/generations/admission.ts';
import { startGenerations, storePass } from '../src/gpu-worker/store.ts';
import { Inference } from '../src/gpu-worker/inference.ts';
import { startWorker } from '../src/gpu-worker/worker.ts';
import { Metrics } from '../src/ops/metrics.ts';
import { type Logger, silentLogger } from '../src/ops/log.ts';
import pino from 'pino';
import {
  type ClaimedJob,
  LeaseLost,
  claim,
  complete,
  failExhausted,
  modelLoads,
  release,
  renew,
  retryLater,
} from '../src/queue/queue.ts';
import { freshPostgres } from './support/db.ts';
import { CHANNELS } from '../src/events/topics.ts';
import { recordFailed } from '../src/webhooks/deliveries.ts';
import { tinyModelDir } from './support/model.ts';
import type { Config } from '../src/config.ts';
import { testConfig } from './support/config.ts';
import { encodePng } from '../src/images/png.ts';
import { startServices } from '../src/services.ts';

let db: Database;
let url: string;
let drop: () => Promise<void>;
let service: GenerationService;
/** A generation's row as it is now (null once deleted). */
const rowOf = async (id: string) => (await service.generationWithImages(id))?.row ?? null;

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  url = pgdb.url;
  db = await openDatabase({ url });
  await migrate(db, () => {});
  await registerModels(db.prisma, [await modelEntry(await tinyModelDir())]);
  service = new GenerationService(db, new ModelCatalog(db.prisma, 'tiny'), {
    quotas: { perMinute: 1000, queued: 1000, imagesPerDay: null },
  });
});

after(async () => {
  await db.query('DELETE FROM "Job"');
  await db.close();
  await drop();
});

const generate = (owner: string, caption = 'a flower') => service.generateImages(owner, { caption, count: 1 });
const lapse = (id: bigint) =>
  db.query('UPDATE "Job" SET "lockedUntil" = now() - interval \'1 second\' WHERE "id" = $1', [id.toString()]);

test('claims are fair across keys: a heavy key with a full queue delays a light key by one job, not by its queue', async () => {
  const heavy = (await createApiKey(db.prisma, 'heavy')).id;
  const light = (await createApiKey(db.prisma, 'light')).id;
  for (let i = 0; i < 20; i++) await generate(heavy, `heavy ${i}`);
  const one = await generate(light, 'light');
  const first = await claim(db, 'w1', ['tiny'], 2, 30);
  assert.ok(
    first.some((j) => j.generationId === one.id),
    'the light key is served in the first claim of two',
  );
  const rest = await claim(db, 'w1', ['tiny'], 100, 30);
  assert.equal(first.length + rest.length, 21);
  await db.query('DELETE FROM "Job"');
});

/** Makes `count` generations of one image, each with its job, for each owner given, the owners taking turns. */
async function backlog(owners: string[], count: number): Promise<void> {
  await db.query(
    `WITH g AS (INSERT INTO "Generation" ("id", "kind", "captions", "seed", "model", "imageCount", "apiKeyId")
                SELECT gen_random_uuid(), 'TEXT_TO_IMAGE', ARRAY['a flower'], i * 1000 + o.n, 'tiny', 1, o.owner
                  FROM generate_series(1, $2::int) i, unnest($1::uuid[]) WITH ORDINALITY o(owner, n)
                 RETURNING "id", "seed")
     INSERT INTO "Job" ("generationId") SELECT "id" FROM g ORDER BY "seed"`,
    [owners, count],
  );
  await db.exec('ANALYZE "Job"');
}

/**
 * The rows of "Job" that each step of a claim of `limit` reads (its rows over all its loops, those its filter dropped
 * too): the claim's statement and arguments as the worker sends them, explained with its run (rolled back), in the plan
 * a worker runs (the prepared statement's generic one, which Postgres keeps after five claims).
 */
async function jobRowsRead(limit: number): Promise<number[]> {
  let sent: { sql: string; params: unknown[] } | undefined;
  await claim({ query: async (sql, params) => ((sent = { sql, params: params ?? [] }), []) }, 'w', ['tiny'], limit, 30);
  const plan = await db.prisma
    .$transaction(async (tx) => {
      await tx.$executeRawUnsafe('SET LOCAL plan_cache_mode = force_generic_plan');
      const [row] = await tx.$queryRawUnsafe<{ 'QUERY PLAN': unknown }[]>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${sent!.sql}`,
        ...sent!.params,
      );
      throw Object.assign(new Error('rolled back'), { plan: row['QUERY PLAN'] });
    })
    .catch((e: { plan?: unknown }) => e.plan);
  type Node = {
    'Relation Name'?: string;
    'Actual Rows': number;
    'Actual Loops': number;
    'Rows Removed by Filter'?: number;
    Plans?: Node[];
  };
  const read: number[] = [];
  const walk = (n: Node) => {
    if (n['Relation Name'] === 'Job')
      read.push((n['Actual Rows'] + (n['Rows Removed by Filter'] ?? 0)) * n['Actual Loops']);
    n.Plans?.forEach(walk);
  };
  walk((plan as [{ Plan: Node }])[0].Plan);
  assert.ok(read.length > 0, 'the plan reads "Job"');
  return read;
}

test("a claim reads each key's first jobs, not the queue: a light key behind 3,000 of a heavy one's costs no more", async () => {
  const heavy = (await createApiKey(db.prisma, 'backlog')).id;
  const light = (await createApiKey(db.prisma, 'behind it')).id;
  await backlog([heavy], 3000);
  const one = await generate(light, 'light');
  const [job] = await db.query<{ owner: string; model: string }>(
    'SELECT "owner", "model" FROM "Job" WHERE "generationId" = $1',
    [one.id],
  );
  assert.deepEqual(job, { owner: light, model: 'tiny' }, "a job carries its generation's owner and model");
  await db.exec('ANALYZE "Job"');
  const read = await jobRowsRead(8);
  assert.ok(Math.max(...read) <= 100, `rows of "Job" read by each step: ${read.join(', ')}`);
  const claimed = await claim(db, 'w', ['tiny'], 2, 30);
  assert.ok(
    claimed.some((j) => j.generationId === one.id),
    'the light key is served in the first claim of two',
  );
  await db.query('DELETE FROM "Job"');
});

test("a claim among many keys' backlogs reads a few jobs of each, as many as it may take, in turn", async () => {
  const owners = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => (await createApiKey(db.prisma, `backlog ${i}`)).id),
  );
  await backlog(owners, 100);
  // a claim of 8 wants 32 places (8 for each of at least four workers): the 30 keys' first jobs, then one more of each
  const read = await jobRowsRead(8);
  assert.ok(Math.max(...read) <= 100, `rows of "Job" read by each step: ${read.join(', ')}`);
  // 40 taken: each key's first, then each key's second (the oldest ten of those)
  const claimed = await claim(db, 'w', ['tiny'], 40, 30);
  const order = await db.query<{ owner: string; seed: number }>(
    `SELECT g."apiKeyId" AS "owner", g."seed" FROM "Generation" g WHERE g."id" = ANY($1::uuid[])`,
    [claimed.map((j) => j.generationId)],
  );
  const seeds = order.map((r) => r.seed).sort((x, y) => x - y);
  assert.deepEqual(seeds, [...owners.map((_, n) => 1000 + n + 1), ...owners.slice(0, 10).map((_, n) => 2000 + n + 1)]);
  await db.query('DELETE FROM "Job"');
});

test('leases fence every change: a worker whose lease lapsed and was taken over changes nothing', async () => {
  const owner = (await createApiKey(db.prisma, 'fencing')).id;
  const g = await generate(owner);
  const [mine] = await claim(db, 'slow', ['tiny'], 1, 30);
  assert.equal(mine.generationId, g.id);
  await lapse(mine.id);
  const [theirs] = await claim(db, 'fast', ['tiny'], 1, 30);
  assert.equal(theirs.id, mine.id);
  assert.equal(theirs.attempts, 2);
  assert.equal(await retryLater(db.prisma, mine.id, mine.holder, 'too late', 1), false);
  await assert.rejects(
    db.prisma.$transaction((tx) => complete(tx, mine.id, mine.holder)),
    LeaseLost,
  );
  const [row] = await db.query<{ lockedBy: string }>('SELECT "lockedBy" FROM "Job" WHERE "id" = $1', [
    mine.id.toString(),
  ]);
  assert.equal(row.lockedBy, theirs.holder);
  await db.prisma.$transaction((tx) => complete(tx, theirs.id, theirs.holder));
  assert.equal((await db.query('SELECT 1 FROM "Job" WHERE "id" = $1', [mine.id.toString()])).length, 0);
});

test('a job that used its attempts (its worker died each time) is not claimed again; it ends FAILED and says why', async () => {
  const owner = (await createApiKey(db.prisma, 'crashy')).id;
  const g = await generate(owner);
  for (let attempt = 1; attempt <= 3; attempt++) {
    const [job] = await claim(db, `worker-${attempt}`, ['tiny'], 1, 30);
    assert.equal(job?.attempts, attempt);
    await lapse(job.id); // the worker died holding it
  }
  assert.deepEqual(await claim(db, 'worker-4', ['tiny'], 1, 30), []);
  // while something holds its generation (a late store, a cancel: they lock the generation, then the job) the
  // sweep passes it by, rather than taking the job and waiting for the generation (a deadlock with them)
  await db.prisma.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT 1 FROM "Generation" WHERE "id" = ${g.id}::uuid FOR UPDATE`;
    assert.deepEqual(await failExhausted(db.prisma), []);
  });
  assert.deepEqual(await failExhausted(db.prisma), [g.id]);
  const after = await rowOf(g.id);
  assert.equal(after?.status, 'FAILED');
  assert.match(after?.error ?? '', /gave up after 3 attempts: the worker stopped while running it/);
});

test('with no worker running (scaled to zero), an API process ends a job that used its attempts', async () => {
  const owner = (await createApiKey(db.prisma, 'orphaned')).id;
  const g = await generate(owner, 'orphaned');
  // its last attempt's worker died while running it, and the lease lapsed: nothing claims it again
  await startGenerations(db.prisma, [g.id]);
  await db.query(
    `UPDATE "Job" SET "attempts" = "maxAttempts", "lockedBy" = 'gone', "lockedUntil" = now() - interval '1 second'
      WHERE "generationId" = $1`,
    [g.id],
  );
  const api = await startServices(
    testConfig(await tinyModelDir(), { databaseUrl: url }),
    { api: true, worker: false, migrate: false },
    silentLogger(),
  );
  try {
    for (let waited = 0; (await rowOf(g.id))?.status === 'RUNNING'; waited += 100) {
      assert.ok(waited < 20_000, 'still RUNNING after 20 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const ended = await rowOf(g.id);
    assert.equal(ended?.status, 'FAILED');
    assert.match(ended?.error ?? '', /gave up after 3 attempts/);
    assert.match(await api.metrics.registry.metrics(), /ganvas_generations_finished_total\{status="FAILED"\} 1/);
  } finally {
    await api.stop();
  }
});

test('concurrent claimers never share a job; only jobs of the models asked for are claimed', async () => {
  const owner = (await createApiKey(db.prisma, 'concurrent')).id;
  const ids = new Set<string>();
  for (let i = 0; i < 12; i++) ids.add((await generate(owner, `many ${i}`)).id);
  const claims = await Promise.all([1, 2, 3, 4].map((w) => claim(db, `w${w}`, ['tiny'], 5, 30)));
  const claimed = claims.flat().map((j) => j.generationId);
  assert.equal(claimed.length, 12);
  assert.deepEqual(new Set(claimed), ids);
  assert.deepEqual(await claim(db, 'other', ['another-model'], 5, 30), []);
  await db.query('DELETE FROM "Job"');
});

/**
 * Claims of the given sizes, each by a live worker of the model that claims as many, each in a transaction left open
 * until all have claimed: each runs while the ones before it hold the jobs they took, locked and not yet marked (the
 * moment claims overlap, stretched). Returns the jobs each took.
 */
async function overlappingClaims(sizes: number[]): Promise<ClaimedJob[][]> {
  const workers = sizes.map((maxJobs, w) => ({ workerId: `overlap-${w}`, maxJobs }));
  for (const w of workers) await heartbeat(db.prisma, w, ['tiny']);
  const sessions = await Promise.all(
    workers.map(async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('BEGIN');
      return c;
    }),
  );
  try {
    const claims = [];
    for (const [i, c] of sessions.entries()) {
      const session = { query: async (sql: string, params?: unknown[]) => (await c.query(sql, params)).rows };
      claims.push(await claim(session, workers[i].workerId, ['tiny'], sizes[i], 30));
    }
    for (const c of sessions) await c.query('COMMIT');
    return claims;
  } finally {
    await Promise.all(sessions.map((c) => c.end()));
    await db.query(`DELETE FROM "ModelWorker" WHERE "workerId" LIKE 'overlap-%'`);
  }
}

test("six workers claiming one key's backlog at the same moment each take a full claim", async () => {
  const owner = (await createApiKey(db.prisma, 'one backlog')).id;
  for (let i = 0; i < 60; i++) await generate(owner, `backlog ${i}`);
  const claims = await overlappingClaims([8, 8, 8, 8, 8, 8]);
  assert.deepEqual(
    claims.map((c) => c.length),
    [8, 8, 8, 8, 8, 8],
  );
  assert.equal(new Set(claims.flat().map((j) => j.generationId)).size, 48);
  await db.query('DELETE FROM "Job"');
});

test("workers of different claim sizes claiming many keys' jobs at the same moment each take theirs", async () => {
  const owners = await Promise.all(
    Array.from({ length: 100 }, async (_, i) => (await createApiKey(db.prisma, `two each ${i}`)).id),
  );
  await backlog(owners, 2);
  // the last claim reads past the 96 places the three before it are taking
  const claims = await overlappingClaims([32, 32, 32, 2]);
  assert.deepEqual(
    claims.map((c) => c.length),
    [32, 32, 32, 2],
  );
  assert.equal(new Set(claims.flat().map((j) => j.generationId)).size, 98);
  await db.query('DELETE FROM "Job"');
});

test('a claim starts the QUEUED generations it takes (RUNNING, one NOTIFY each) but one it cannot lock at once', async () => {
  const owner = (await createApiKey(db.prisma, 'starting')).id;
  const [free, held] = [await generate(owner, 'free'), await generate(owner, 'held')];
  const notified: string[] = [];
  const unlisten = await db.listen(CHANNELS.generation, (id) => notified.push(id));
  // what was sent before this marker (the admissions' NOTIFYs) is not the claim's
  await db.query(`SELECT pg_notify($1, 'marker')`, [CHANNELS.generation]);
  for (let i = 0; !notified.includes('marker'); i++) {
    assert.ok(i < 100, 'the marker arrives');
    await new Promise((r) => setTimeout(r, 20));
  }
  notified.length = 0;
  // another transaction holds one of the generations (a cancel between its two locks: this one, then its job); were
  // the claim to wait for it, it would wait until the holder lets go after 5 s
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  let jobs: Awaited<ReturnType<typeof claim>>;
  let waited: boolean;
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM "Generation" WHERE id = $1 FOR UPDATE', [held.id]);
    const letGo = setTimeout(() => void holder.query('ROLLBACK'), 5_000);
    const began = performance.now();
    jobs = await claim(db, 'w', ['tiny'], 2, 30);
    waited = performance.now() - began >= 5_000;
    clearTimeout(letGo);
  } finally {
    await holder.end();
  }
  assert.equal(waited, false, 'the claim did not wait for the held generation');
  const of = (id: string) => jobs.find((j) => j.generationId === id)!;
  assert.equal(jobs.length, 2, 'both jobs claimed');
  assert.deepEqual(of(free.id).started, await db.prisma.generation.findUniqueOrThrow({ where: { id: free.id } }));
  assert.equal(of(free.id).started?.status, 'RUNNING');
  assert.equal(of(held.id).started, null, 'not waited for');
  assert.equal((await rowOf(held.id))?.status, 'QUEUED');
  for (let i = 0; notified.length === 0; i++) {
    assert.ok(i < 100, 'the start NOTIFYs');
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100));
  await unlisten();
  assert.deepEqual(notified, [free.id]);
  // the worker starts the one left itself
  assert.equal((await startGenerations(db.prisma, [held.id]))[0].generation.status, 'RUNNING');
  // a retry's generation is RUNNING already: its claim leaves it as it is
  assert.equal(await retryLater(db.prisma, of(free.id).id, of(free.id).holder, 'the pass failed', 0), true);
  const [again] = await claim(db, 'w', ['tiny'], 5, 30);
  assert.deepEqual([again.generationId, again.attempts, again.started], [free.id, 2, null]);
  await db.query('DELETE FROM "Job"');
});

test('each claim holds its leases under a name of its own: a batch that outlived them keeps nothing, though its own worker claimed the job again', async () => {
  const owner = (await createApiKey(db.prisma, 'outlived')).id;
  const g = await generate(owner, 'outlived');
  const [first] = await claim(db, 'test', ['tiny'], 1, 30);
  // the first batch ran past JOB_TIME_LIMIT_SECONDS: its lease lapsed and the same worker claimed the job again
  await lapse(first.id);
  const [again] = await claim(db, 'test', ['tiny'], 1, 30);
  assert.equal(again.id, first.id);
  assert.ok(
    [first.holder, again.holder].every((h) => h.startsWith('test/')),
    `${first.holder} ${again.holder}`,
  );
  assert.notEqual(first.holder, again.holder);
  const image = { index: 0, caption: 'outlived', seed: 1, mix: null, width: 64, height: 64, png: new Uint8Array([1]) };
  const item = { generation: first.started!, jobId: first.id, images: [image], finish: true };
  assert.equal((await storePass(db, first.holder, [item])).get(g.id), 'lost');
  assert.deepEqual(await renew(db.prisma, first.holder, [first.id], 60), []);
  assert.equal((await storePass(db, again.holder, [item])).get(g.id), 'finished');
  await db.query('DELETE FROM "Generation" WHERE "id" = $1', [g.id]);
});

test('renew extends only leases still held; release hands jobs back without counting the attempt', async () => {
  const owner = (await createApiKey(db.prisma, 'renew')).id;
  await generate(owner, 'kept');
  await generate(owner, 'lost');
  const [kept, lost] = await claim(db, 'holder', ['tiny'], 2, 30);
  await lapse(lost.id);
  const [taken] = await claim(db, 'thief', ['tiny'], 1, 30);
  assert.equal(taken.id, lost.id);
  assert.deepEqual(await renew(db.prisma, kept.holder, [kept.id, lost.id], 60), [kept.id]);
  const [row] = await db.query<{ s: number }>(
    'SELECT extract(epoch FROM "lockedUntil" - now())::float8 AS s FROM "Job" WHERE "id" = $1',
    [kept.id.toString()],
  );
  assert.ok(row.s > 50, `lease extended to 60 s, ${row.s} s left`);
  const notified: string[] = [];
  const unlisten = await db.listen(CHANNELS.jobs, (id) => notified.push(id));
  await release(db.prisma, kept.holder, [kept, lost]); // only its own: the thief keeps its job
  for (let i = 0; notified.length === 0; i++) {
    assert.ok(i < 100, 'a hand-back NOTIFYs idle workers');
    await new Promise((r) => setTimeout(r, 20));
  }
  await unlisten();
  assert.deepEqual(notified, [kept.generationId]);
  // the claim had started both generations: the one handed back waits QUEUED again, the thief's keeps running
  const status = async (id: string) => (await rowOf(id))?.status;
  assert.deepEqual([await status(kept.generationId), await status(lost.generationId)], ['QUEUED', 'RUNNING']);
  assert.equal((await rowOf(kept.generationId))?.startedAt, null);
  const back = await claim(db, 'next', ['tiny'], 5, 30);
  assert.deepEqual(
    back.map((j) => [j.id, j.attempts]),
    [[kept.id, 1]],
  );
  await db.query('DELETE FROM "Job"');
});

test('a generation handed back and started again has one generation.started message', async () => {
  const owner = (await createApiKey(db.prisma, 'hand-back webhook')).id;
  const started = async (id: string) =>
    (
      await db.query<{ id: string; attempts: number }>(
        `SELECT "id"::text AS "id", "attempts" FROM "WebhookDelivery" WHERE "generationId" = $1 AND "event" = 'STARTED'`,
        [id],
      )
    ).map((r) => ({ ...r, first: r.id === firstMessage }));
  let firstMessage = '';
  const handBackAndRestart = async (g: { id: string }, tried: boolean) => {
    await db.query(
      `UPDATE "Generation" SET "webhookUrl" = 'https://receiver.example/hook', "webhookEvents" = '{STARTED}' WHERE "id" = $1`,
      [g.id],
    );
    const jobs = await claim(db, 'stopping', ['tiny'], 1, 30);
    const [first] = await started(g.id);
    firstMessage = first.id;
    assert.equal(first.attempts, 0, 'the claim started it: its message');
    if (tried) await db.query(`UPDATE "WebhookDelivery" SET "attempts" = 1 WHERE "generationId" = $1`, [g.id]);
    await release(db.prisma, jobs[0].holder, jobs);
    await claim(db, 'next', ['tiny'], 1, 30);
    assert.equal((await rowOf(g.id))?.status, 'RUNNING');
    return (await started(g.id)).map((m) => [m.first, m.attempts]);
  };
  const [untried, tried] = [await generate(owner, 'untried'), await generate(owner, 'tried')];
  // not tried yet when handed back: it goes, and the start that counts makes the one sent
  assert.deepEqual(await handBackAndRestart(untried, false), [[false, 0]]);
  // on its way already: no second one
  assert.deepEqual(await handBackAndRestart(tried, true), [[true, 1]]);
  await db.query('DELETE FROM "Job"');
  await db.query('DELETE FROM "WebhookDelivery" WHERE "generationId" = ANY($1::uuid[])', [[untried.id, tried.id]]);
});

test('a retried job waits out its delay; a canceled generation leaves the queue', async () => {
  const owner = (await createApiKey(db.prisma, 'retry')).id;
  await generate(owner, 'retried');
  const [job] = await claim(db, 'w', ['tiny'], 1, 30);
  assert.equal(await retryLater(db.prisma, job.id, job.holder, 'the pass failed', 2), true);
  assert.deepEqual(await claim(db, 'w', ['tiny'], 1, 30), [], 'not due yet');
  await db.query('UPDATE "Job" SET "runAt" = now() WHERE "id" = $1', [job.id.toString()]);
  const [again] = await claim(db, 'w', ['tiny'], 1, 30);
  assert.equal(again.attempts, 2);
  await db.prisma.$transaction((tx) => complete(tx, again.id, again.holder));

  const g = await generate(owner, 'canceled');
  await service.cancel(owner, g.id);
  assert.deepEqual(await claim(db, 'w', ['tiny'], 5, 30), []);
  assert.equal((await rowOf(g.id))?.status, 'CANCELED');
});

test("a cancel that waits for a worker's store of the last pass answers the generation as that store left it", async () => {
  const owner = (await createApiKey(db.prisma, 'cancel-race')).id;
  const g = await generate(owner, 'finishing');
  await startGenerations(db.prisma, [g.id]);
  const store = new pg.Client({ connectionString: url });
  await store.connect();
  await store.query('BEGIN');
  await store.query(`UPDATE "Generation" SET "status" = 'SUCCEEDED', "finishedAt" = now() WHERE "id" = $1`, [g.id]);
  const storePid = (await store.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  let settled = false;
  const cancel = service.cancel(owner, g.id).finally(() => (settled = true));
  cancel.catch(() => {}); // asserted below
  // the cancel's one statement waits for the row the store holds (were it not to, the cancel settles: asserted below)
  const waiting = async () =>
    (
      await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
        [storePid],
      )
    )[0].n > 0;
  while (!settled && !(await waiting())) await new Promise((r) => setTimeout(r, 10));
  assert.equal(settled, false, 'the cancel waited for the store');
  await store.query('COMMIT');
  await store.end();
  await assert.rejects(cancel, /generation .* has already finished \(SUCCEEDED\)/);
  await db.query('DELETE FROM "Generation" WHERE "id" = $1', [g.id]);
});

test("a pass's images keep their bytes and fields; progress counts them; a retry's duplicates are skipped", async () => {
  const owner = (await createApiKey(db.prisma, 'progress')).id;
  const g = await service.generateImages(owner, { caption: 'a flower', count: 4 });
  const [job] = await claim(db, 'w', ['tiny'], 1, 30);
  const [{ generation }] = await startGenerations(db.prisma, [g.id]);
  // NUL, backslash and quotes survive; each image's bytes differ in length and content (one parameter carries them all)
  const png = (index: number) => new Uint8Array([137, 80, 78, 71, 0, 255, 92, 39, 34, ...Array(index * 3).fill(index)]);
  const image = (index: number, mix: number | null) => ({
    index,
    caption: 'a "flower"',
    seed: 7,
    mix,
    width: 64,
    height: 64,
    png: png(index),
  });
  const pass = (images: ReturnType<typeof image>[]) =>
    storePass(db, job.holder, [{ generation, jobId: job.id, images, finish: false }]);
  assert.equal((await pass([image(0, null), image(1, 0.25)])).get(g.id), 'stored');
  assert.equal((await rowOf(g.id))?.progress, 0.5);
  await pass([image(1, 0.9), image(2, null)]); // index 1 again, as a retried attempt would
  const rows = await db.prisma.image.findMany({ where: { generationId: g.id }, orderBy: { index: 'asc' } });
  assert.deepEqual(
    rows.map((r) => [r.index, r.mix, r.caption, r.seed, r.width, r.height, [...r.png]]),
    [
      [0, null, 'a "flower"', 7, 64, 64, [...png(0)]],
      [1, 0.25, 'a "flower"', 7, 64, 64, [...png(1)]],
      [2, null, 'a "flower"', 7, 64, 64, [...png(2)]],
    ],
  );
  assert.equal(new Set(rows.map((r) => r.token)).size, 3, 'each image its own token');
  assert.equal((await rowOf(g.id))?.progress, 0.75);
  await db.query('DELETE FROM "Generation" WHERE "id" = $1', [g.id]); // its job and images with it
});

test('a pass is stored in one transaction and ends what it completes; a canceled generation or a lost lease keeps nothing', async () => {
  const owner = (await createApiKey(db.prisma, 'pass')).id;
  const [kept, canceled, lost] = [
    await generate(owner, 'kept'),
    await generate(owner, 'canceled'),
    await generate(owner, 'lost'),
  ];
  const jobs = await claim(db, 'w', ['tiny'], 3, 30);
  const started = await startGenerations(db.prisma, [kept.id, canceled.id, lost.id]);
  await service.cancel(owner, canceled.id);
  const lostJob = jobs.find((j) => j.generationId === lost.id)!;
  await lapse(lostJob.id);
  const [thief] = await claim(db, 'thief', ['tiny'], 1, 30);
  const image = { index: 0, caption: 'x', seed: 1, mix: null, width: 1, height: 1, png: new Uint8Array([1]) };
  const outcome = await storePass(
    db,
    jobs[0].holder,
    started.map(({ generation }) => ({
      generation,
      jobId: jobs.find((j) => j.generationId === generation.id)!.id,
      images: [image],
      finish: true, // one image each: the last ones
    })),
  );
  assert.deepEqual(Object.fromEntries(outcome), {
    [kept.id]: 'finished',
    [canceled.id]: 'canceled',
    [lost.id]: 'lost',
  });
  const rows = await db.query<{ generationId: string }>('SELECT "generationId"::text FROM "Image"');
  assert.deepEqual(
    rows.map((r) => r.generationId),
    [kept.id],
  );
  const done = await rowOf(kept.id);
  assert.deepEqual([done?.status, done?.progress], ['SUCCEEDED', 1]);
  const left = await db.query<{ generationId: string; lockedBy: string }>(
    'SELECT "generationId"::text, "lockedBy" FROM "Job"',
  );
  assert.deepEqual(
    left,
    [{ generationId: lost.id, lockedBy: thief.holder }],
    "the finished one's job is gone, the lost one's stays the thief's",
  );
  await db.query('DELETE FROM "Job"');
});

test("a model's drawing rate is its images over the time its generations ran, idle time between them left out", async () => {
  const owner = (await createApiKey(db.prisma, 'rate')).id;
  await registerModels(db.prisma, [{ ...(await modelEntry(await tinyModelDir())), name: 'rate' }]);
  const rate = async () => (await modelLoads(db.prisma)).find((l) => l.model === 'rate')!.imagesPerSecond;
  assert.equal(await rate(), null, 'nothing drawn yet');
  // seconds ago: one ran 300-299 (4 images), then 10-8 (4) with two inside it, 9.8-9.6 and 9-8.5 (1 each), one
  // across the window's start, 610-590 (4, stored at its end: its last 10 s count, less the time this test took since
  // `at`), one 20 minutes ago and one still running (neither counted): 14 images in 1 + 2 + 10 s of drawing
  const spans: [number, number | null, number][] = [
    [300, 299, 4],
    [10, 8, 4],
    [9.8, 9.6, 1],
    [9, 8.5, 1],
    [610, 590, 4],
    [1200, 1199, 4],
    [5, null, 3],
  ];
  const [{ at }] = await db.query<{ at: Date }>('SELECT now() AS at'); // one clock for every span
  for (const [from, to, images] of spans) {
    const g = await service.generateImages(owner, { caption: `rate ${from}`, count: images });
    await db.query('DELETE FROM "Job" WHERE "generationId" = $1', [g.id]);
    await db.query(
      `UPDATE "Generation" SET "model" = 'rate', "status" = CASE WHEN $4::float8 IS NULL THEN 'RUNNING' ELSE 'SUCCEEDED' END::"GenerationStatus",
              "startedAt" = $2::timestamptz - make_interval(secs => $3),
              "finishedAt" = $2::timestamptz - make_interval(secs => $4)
        WHERE "id" = $1`,
      [g.id, at, from, to],
    );
    await db.query(
      `INSERT INTO "Image" ("id", "generationId", "index", "width", "height", "caption", "seed", "token", "png", "createdAt")
       SELECT gen_random_uuid(), $1, k, 32, 32, 'c', 0, 't', '\\x00', $2::timestamptz - make_interval(secs => $3)
         FROM generate_series(0, $4 - 1) AS k`,
      [g.id, at, to ?? from - 1, images],
    );
  }
  const r = await rate();
  assert.ok(r !== null && r >= 14 / 13 && r < 14 / 12.5, `rate ${r}`);
});

test('a claim takes nothing unless the jobs it may take ask for at least the images it wants', async () => {
  const owner = (await createApiKey(db.prisma, 'filling')).id;
  const images = (caption: string, count: number) => service.generateImages(owner, { caption, count });
  await images('two', 2);
  assert.deepEqual(await claim(db, 'w1', ['tiny'], 10, 30, 3), [], 'two images queued, three wanted');
  await images('one', 1);
  await images('another', 1);
  assert.deepEqual(await claim(db, 'w1', ['tiny'], 1, 30, 3), [], 'the one job it may take has two');
  assert.equal((await claim(db, 'w1', ['tiny'], 2, 30, 3)).length, 2, 'two jobs, three images');
  await db.query('DELETE FROM "Job"');
});

/**
 * Runs `body` beside a worker of the tiny model on `options.db` (default: the test's), its inference as
 * `options.prepare` leaves it (a test's stand-in calls), then stops both.
 */
async function withWorker<T>(
  options: {
    db?: Database;
    config?: Partial<Config>;
    metrics?: Metrics;
    log?: Logger;
    prepare?: (inference: Inference) => void;
  },
  body: () => Promise<T>,
): Promise<T> {
  const modelDir = await tinyModelDir();
  const inference = await Inference.start(modelDir, 'wasm', () => {});
  options.prepare?.(inference);
  const worker = await startWorker({
    db: options.db ?? db,
    inference,
    modelDir,
    config: testConfig(modelDir, options.config),
    log: options.log ?? silentLogger(),
    metrics: options.metrics ?? new Metrics(),
  });
  try {
    return await body();
  } finally {
    await worker.stop();
    await inference.stop();
  }
}

/** An inference (withWorker's `prepare`) whose first pass waits until `release()`; `draws()`: the passes sent. */
function holdingFirstPass(): { prepare: (inference: Inference) => void; release: () => void; draws: () => number } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let draws = 0;
  const prepare = (inference: Inference) => {
    const draw = inference.draw.bind(inference);
    inference.draw = async (items) => (draws++ === 0 ? held.then(() => draw(items)) : draw(items));
  };
  return { prepare, release, draws: () => draws };
}

/**
 * Two one-image generations, one job a claim; the first pass (the first generation's) waits until the test
 * lets it go. Returns whether the second was drawn within `waitMs` while the first was held, and checks both
 * succeed.
 */
async function secondDrawnWhileFirstHeld(name: string, maxBatch: number, waitMs: number): Promise<boolean> {
  const owner = (await createApiKey(db.prisma, name)).id;
  const [first, second] = [await generate(owner, 'first'), await generate(owner, 'second')];
  const { prepare, release, draws } = holdingFirstPass();
  const status = async (id: string) => (await rowOf(id))?.status;
  return withWorker({ config: { maxJobs: 1, maxBatch }, prepare }, async () => {
    try {
      for (let i = 0; draws() < 1; i++) {
        assert.ok(i < 200, 'the first pass is sent');
        await new Promise((r) => setTimeout(r, 50));
      }
      for (let i = 0; i * 50 < waitMs && draws() < 2; i++) await new Promise((r) => setTimeout(r, 50));
      const drawnAhead = draws() === 2;
      assert.equal(await status(first.id), 'RUNNING');
      // drawn ahead, the second may already be stored and done
      const secondNow = await status(second.id);
      assert.ok(drawnAhead ? secondNow === 'RUNNING' || secondNow === 'SUCCEEDED' : secondNow === 'QUEUED', secondNow);
      release();
      for (let i = 0; (await status(second.id)) !== 'SUCCEEDED' || (await status(first.id)) !== 'SUCCEEDED'; i++) {
        assert.ok(i < 200, 'both succeed');
        await new Promise((r) => setTimeout(r, 50));
      }
      return drawnAhead;
    } finally {
      release();
    }
  });
}

test('a generation canceled while it draws: the worker stops it and leaves quietly (its job went with the cancel)', async () => {
  const owner = (await createApiKey(db.prisma, 'cancel-running')).id;
  const g = await service.generateImages(owner, { caption: 'canceled mid-way', count: 2 });
  const { prepare, release, draws } = holdingFirstPass();
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  await withWorker({ config: { maxBatch: 1 }, log, prepare }, async () => {
    for (let i = 0; draws() < 1; i++) {
      assert.ok(i < 200, 'the first pass is sent');
      await new Promise((r) => setTimeout(r, 25));
    }
    await service.cancel(owner, g.id);
    release();
    for (let i = 0; (await db.query('SELECT 1 FROM "Job" WHERE "generationId" = $1', [g.id])).length > 0; i++) {
      assert.ok(i < 200, 'its job is gone');
      await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 200)); // the worker settles it
  });
  const { row, images } = (await service.generationWithImages(g.id))!;
  assert.equal(row.status, 'CANCELED');
  assert.ok(images.length <= 1, 'no image drawn after the cancel is stored');
  assert.deepEqual(warnings, []);
});

test("the worker claims a full pass while a batch's last pass draws, so the threads don't wait", async () => {
  assert.equal(await secondDrawnWhileFirstHeld('pipeline', 1, 10_000), true);
});

test('less than a pass queued: the worker claims it only once the last pass is drawn', async () => {
  assert.equal(await secondDrawnWhileFirstHeld('small', 8, 500), false);
});

/** The test's database, telling `onClaim` of each claim statement sent through it (with its rows, when they come). */
function watchingClaims(onClaim: (rows: Promise<unknown[]>) => void): Database {
  return {
    ...db,
    query: <T>(sql: string, params?: unknown[], opts?: { prepared?: boolean }) => {
      const rows = db.query<T>(sql, params, opts);
      if (sql.includes('AS "claimedJob"')) onClaim(rows);
      return rows;
    },
  };
}

test('a worker that found the queue drained claims again when a job is admitted, or a second later', async () => {
  let claims = 0;
  const watched = watchingClaims(() => claims++);
  const owner = (await createApiKey(db.prisma, 'drained')).id;
  const succeeded = async (id: string) => {
    for (let i = 0; (await rowOf(id))?.status !== 'SUCCEEDED'; i++) {
      assert.ok(i < 200, 'it succeeds');
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  // a job that turns due without a NOTIFY: another worker's lease on it lapses
  const ghost = await generate(owner, 'held by a worker that died');
  const [held] = await claim(db, 'ghost', ['tiny'], 1, 1);
  await withWorker({ db: watched }, async () => {
    await succeeded(ghost.id);
    assert.equal(held.generationId, ghost.id);
    // one request at a time: the claim that takes it, and none while it is drawn and stored (the queue drained),
    // beside the idle worker's polls, one a second (before: three claims a request)
    const before = claims;
    const began = performance.now();
    for (let round = 0; round < 3; round++) await succeeded((await generate(owner, `alone ${round}`)).id);
    const polls = Math.ceil((performance.now() - began) / 1000) + 1;
    const n = claims - before;
    assert.ok(n >= 3 && n <= 3 + polls, `${n} claims for three requests (${polls} polls)`);
  });
});

test("an admission's NOTIFY names the request's model and captions, where they fit in one", async () => {
  const owner = (await createApiKey(db.prisma, 'hint')).id;
  const payloads: string[] = [];
  const unlisten = await db.listen(CHANNELS.jobs, (p) => payloads.push(p));
  const short = await generate(owner, 'a small "quoted" flower');
  // 16 captions of 300 characters that JSON escapes to two each: 4,800 bytes, 9,600 in JSON, over a NOTIFY's 8,000
  const upload = encodePng(new Uint8Array(16 * 16 * 3), 16, 16).toString('base64');
  const long = await service.transferStyle(owner, { image: upload, captions: Array(16).fill('"'.repeat(300)) });
  for (let i = 0; payloads.length < 2; i++) {
    assert.ok(i < 100, 'both NOTIFY');
    await new Promise((r) => setTimeout(r, 20));
  }
  await unlisten();
  assert.deepEqual(JSON.parse(payloads[0]), { id: short.id, model: 'tiny', captions: ['a small "quoted" flower'] });
  assert.equal(payloads[1], long.id, 'too long for a NOTIFY: the id alone');
  await db.query('DELETE FROM "Job"');
});

test("an idle worker starts phi of a request's captions at its admission, while it claims it; the draw embeds nothing more", async () => {
  const caption = 'a flower first seen here';
  const embedded: number[] = [];
  const asked: string[][] = [];
  const prepare = (inference: Inference) => {
    const embed = inference.embed.bind(inference);
    inference.embed = (captions) => {
      asked.push(captions);
      if (captions.includes(caption)) embedded.push(performance.now());
      return embed(captions);
    };
  };
  let claimedAt = 0;
  let claims = 0;
  const watched = watchingClaims(
    (rows) =>
      void rows.then(
        (r) => {
          claims++;
          if (r.length > 0) claimedAt = performance.now();
        },
        () => {},
      ),
  );
  const soon = async (what: string, done: () => boolean) => {
    for (let i = 0; !done(); i++) {
      assert.ok(i < 500, what);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const owner = (await createApiKey(db.prisma, 'foreseen')).id;
  await withWorker({ db: watched, prepare }, async () => {
    await soon('its first claim (which finds nothing: then it sleeps)', () => claims > 0);
    // a hand-back's NOTIFY (an id alone), another model's admission, then two admissions' at once (here without
    // their jobs): the first of this model's only, as a burst is claimed together and embedded in one call
    const hint = (c: string, model = 'tiny') => JSON.stringify({ id: randomUUID(), model, captions: [c] });
    await db.query(`SELECT pg_notify($1, $2), pg_notify($1, $3), pg_notify($1, $4), pg_notify($1, $5)`, [
      CHANNELS.jobs,
      randomUUID(),
      hint('not drawn here', 'other'),
      hint('hint 1'),
      hint('hint 2'),
    ]);
    await soon('a hint embedded', () => asked.length > 0);
    await new Promise((r) => setTimeout(r, 200)); // and no more
    assert.deepEqual(asked, [['hint 1']]);
    const g = await generate(owner, caption);
    for (let i = 0; (await rowOf(g.id))?.status !== 'SUCCEEDED'; i++) {
      assert.ok(i < 200, 'it succeeds');
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(embedded.length, 1, 'one phi call for its caption');
    assert.ok(embedded[0] < claimedAt, 'phi began before the claim came back');
  });
});

test('the worker ends a job whose attempts are spent: FAILED, and counted in its metrics', async () => {
  const owner = (await createApiKey(db.prisma, 'spent')).id;
  const g = await generate(owner, 'spent');
  await db.query('UPDATE "Job" SET "attempts" = "maxAttempts" WHERE "generationId" = $1', [g.id]);
  const metrics = new Metrics();
  await withWorker({ metrics }, async () => {
    for (let i = 0; (await rowOf(g.id))?.status !== 'FAILED'; i++) {
      assert.ok(i < 100, 'it ends FAILED');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(await metrics.registry.metrics(), /ganvas_generations_finished_total\{status="FAILED"\} 1\n/);
  });
});

test('a style encoder call that breaks on one request fails that one alone, not its batch-mates', async () => {
  const owner = (await createApiKey(db.prisma, 'poisoned')).id;
  const upload = (v: number) => encodePng(new Uint8Array(16 * 16 * 3).fill(v), 16, 16).toString('base64');
  const poison = await service.transferStyle(owner, { image: upload(7), captions: ['a red flower'] });
  const fine = await service.transferStyle(owner, { image: upload(90), captions: ['a blue flower'] });
  const text = await generate(owner, 'a white flower');
  // the last attempt of each: a failure now ends it FAILED
  await db.query('UPDATE "Job" SET "attempts" = "maxAttempts" - 1 WHERE "generationId" = ANY($1::uuid[])', [
    [poison.id, fine.id, text.id],
  ]);
  // S throws for any call that holds the poisoned image (an error the thread survives, as an allocation failure)
  const prepare = (inference: Inference) => {
    const styleOf = inference.styleOf.bind(inference);
    inference.styleOf = (images) =>
      images.some((rgb) => rgb.every((v) => v === 7)) ? Promise.reject(new Error('S broke')) : styleOf(images);
  };
  await withWorker({ prepare }, async () => {
    const ended = async () => Promise.all([poison, fine, text].map(async (g) => (await rowOf(g.id))!));
    for (let i = 0; (await ended()).some((g) => g.status === 'QUEUED' || g.status === 'RUNNING'); i++) {
      assert.ok(i < 400, 'they end');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(
      (await ended()).map((g) => g.status),
      ['FAILED', 'SUCCEEDED', 'SUCCEEDED'],
    );
  });
});

test('a pass whose store fails once (a dropped connection) is stored again: no attempt lost', async () => {
  const owner = (await createApiKey(db.prisma, 'glitch')).id;
  const g = await service.generateImages(owner, { caption: 'a flower', count: 2 });
  // its last attempt: a failed store that cost it that attempt would end it FAILED
  await db.query('UPDATE "Job" SET "attempts" = "maxAttempts" - 1 WHERE "generationId" = $1', [g.id]);
  let failures = 0;
  const flaky: Database = {
    ...db,
    query: async (sql, params) => {
      if (sql.includes('ganvas_store_pass') && failures++ === 0) throw new Error('Connection terminated unexpectedly');
      return db.query(sql, params);
    },
  };
  await withWorker({ db: flaky }, async () => {
    let status = (await rowOf(g.id))?.status;
    for (let i = 0; status === 'QUEUED' || status === 'RUNNING'; i++) {
      assert.ok(i < 100, 'it ends');
      await new Promise((r) => setTimeout(r, 50));
      status = (await rowOf(g.id))?.status;
    }
    assert.equal(status, 'SUCCEEDED');
    assert.equal(failures, 2, 'the failed store, then the one that worked');
    const [{ n }] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM "Image" WHERE "generationId" = $1', [
      g.id,
    ]);
    assert.equal(n, 2);
  });
});

test('a store whose commit landed but whose answer was lost: the retry reads what it did (SUCCEEDED, counted)', async () => {
  const owner = (await createApiKey(db.prisma, 'ambiguous')).id;
  // the retry's look-up of the first attempt's images working, then failing too: that only leaves a count unsure
  for (const lookUpFails of [false, true]) {
    // one claim (their passes of at most 2 images), three images: a pass ends one of them while the other draws on
    const gs = [
      await service.generateImages(owner, { caption: 'a flower', count: 1 }),
      await service.generateImages(owner, { caption: 'a flower', count: 2 }),
    ];
    // their last attempts: a pass that threw would end the one still to draw FAILED
    await db.query('UPDATE "Job" SET "attempts" = "maxAttempts" - 1 WHERE "generationId" = ANY($1::uuid[])', [
      gs.map((g) => g.id),
    ]);
    let [answers, lookUps] = [0, 0];
    const flaky: Database = {
      ...db,
      query: async (sql, params) => {
        if (sql.includes('JOIN unnest')) {
          lookUps++;
          if (lookUpFails) throw new Error('Connection reset');
        }
        const rows = await db.query(sql, params);
        if (sql.includes('ganvas_store_pass') && answers++ === 0) throw new Error('Connection terminated unexpectedly');
        return rows as never;
      },
    };
    const metrics = new Metrics();
    await withWorker({ db: flaky, metrics, config: { maxBatch: 2 } }, async () => {
      const finished = /ganvas_generations_finished_total\{status="(\w+)"\} ([1-9])/g;
      // every store answered (the first twice) and each generation counted, or left uncounted where the look-up failed
      const counted = async () => [...(await metrics.registry.metrics()).matchAll(finished)].map((m) => m.slice(1));
      for (let i = 0; answers < 3 || lookUps < 1 || (await counted()).flat().length === 0; i++) {
        assert.ok(i < 100, 'both passes are stored');
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 200)); // nothing more comes
      for (const g of gs) assert.equal((await rowOf(g.id))?.status, 'SUCCEEDED');
      assert.deepEqual(await counted(), [['SUCCEEDED', lookUpFails ? '1' : '2']], 'no attempt lost');
      assert.equal(lookUps, 1, "the retry looked for the first attempt's images once");
      if (!lookUpFails) assert.match(await metrics.registry.metrics(), /ganvas_images_total 3\n/);
    });
  }
});

test('revoking a key cancels its unfinished generations (their jobs gone) and drops its webhook messages not sent yet', async () => {
  const leaked = (await createApiKey(db.prisma, 'leaked')).id;
  const kept = (await createApiKey(db.prisma, 'kept')).id;
  const [queued, running, theirs] = [
    await generate(leaked, 'queued'),
    await generate(leaked, 'running'),
    await generate(kept, 'theirs'),
  ];
  await db.query(`UPDATE "Generation" SET "status" = 'RUNNING', "startedAt" = now() WHERE "id" = $1`, [running.id]);
  for (const g of [running, theirs])
    await db.query(`INSERT INTO "WebhookDelivery" ("generationId", "event") VALUES ($1, 'STARTED')`, [g.id]);
  // one being sent right now is left to its sender
  await db.query(
    `INSERT INTO "WebhookDelivery" ("generationId", "event", "lockedUntil") VALUES ($1, 'COMPLETED', now() + interval '30 seconds')`,
    [running.id],
  );
  // the cancel's own COMPLETED message (made by the status trigger) is dropped too
  await db.query(
    `UPDATE "Generation" SET "webhookUrl" = 'https://example.com/hook', "webhookEvents" = '{COMPLETED}' WHERE "id" = $1`,
    [queued.id],
  );
  assert.equal(await revokeApiKey(db.prisma, leaked), true);
  assert.equal(await revokeApiKey(db.prisma, leaked), false, 'once');
  const status = async (id: string) => (await rowOf(id))?.status;
  assert.deepEqual(
    [await status(queued.id), await status(running.id), await status(theirs.id)],
    ['CANCELED', 'CANCELED', 'QUEUED'],
  );
  const jobs = await db.query<{ g: string }>('SELECT "generationId"::text AS g FROM "Job"');
  assert.deepEqual(
    jobs.map((j) => j.g),
    [theirs.id],
  );
  const deliveries = await db.query<{ g: string; status: string }>(
    'SELECT "generationId"::text AS g, "status"::text AS status FROM "WebhookDelivery" ORDER BY "seq"',
  );
  assert.deepEqual(deliveries, [
    { g: running.id, status: 'FAILED' },
    { g: theirs.id, status: 'PENDING' },
    { g: running.id, status: 'PENDING' },
    { g: queued.id, status: 'FAILED' },
  ]);
  // the one being sent fails: not retried (it was, for a day, signed with the revoked key's secret)
  const [sending] = await db.query<{ id: string; attempts: number }>(
    `SELECT "id"::text AS "id", "attempts" FROM "WebhookDelivery" WHERE "status" = 'PENDING' AND "lockedUntil" IS NOT NULL`,
  );
  const failure = { statusCode: 503, error: 'HTTP 503' };
  assert.equal(await recordFailed(db.prisma, sending, failure, 5, 86_400), 'FAILED');
  const [after] = await db.query<{ lastError: string }>('SELECT "lastError" FROM "WebhookDelivery" WHERE "id" = $1', [
    sending.id,
  ]);
  assert.equal(after.lastError, 'HTTP 503; not retried: the API key was revoked');
  await db.query('DELETE FROM "Job"');
});

test('a request admitted while its key is revoked is canceled by the revoke; one authenticated before but admitted after is refused', async () => {
  const leaked = (await createApiKey(db.prisma, 'leaked-in-flight')).id;
  const quotas = { perMinute: 1000, queued: 1000, imagesPerDay: null };
  const request = { kind: 'TEXT_TO_IMAGE' as const, captions: ['a flower'], seed: 1, model: 'tiny', imageCount: 1 };
  let revoked: Promise<boolean> | null = null;
  let settled = false;
  const admitted = await db.prisma.$transaction(async (tx) => {
    // admitted in this transaction, so that its lock is held while the revoke runs
    const inTx = { query: <T>(sql: string, params: unknown[] = []) => tx.$queryRawUnsafe<T[]>(sql, ...params) };
    const g = await new Admission(inTx, quotas).admit(leaked, request);
    revoked = revokeApiKey(db.prisma, leaked).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(settled, false, 'the revoke waits for the admission in progress');
    return g;
  });
  assert.equal(await revoked!, true);
  assert.equal((await rowOf(admitted.id))?.status, 'CANCELED');
  await assert.rejects(generate(leaked), { code: 'UNAUTHENTICATED', message: 'this API key was revoked' });
  const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM "Generation" WHERE "apiKeyId" = $1', [
    leaked,
  ]);
  assert.deepEqual(rows, [{ n: 1 }]);
});
