/**
 * Deleting generations on Postgres (keys mode, API and worker in one process): one, a running one, a
 * filtered set, and RETENTION_DAYS's sweep; image URLs of deleted generations answer 404.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiKey } from '../src/auth/keys.ts';
import { deleteExpired } from '../src/generations/retention.ts';
import { silentLogger } from '../src/ops/log.ts';
import { type Running, startServices } from '../src/services.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { codeOf, collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';

let running: Running;
let drop: () => Promise<void>;
let keyA = '';
let keyB = '';

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  const config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url, maxBatch: 1 });
  running = await startServices(config, { api: true, worker: true, migrate: true, auth: 'keys' }, silentLogger());
  keyA = (await createApiKey(running.db.prisma, 'a')).key;
  keyB = (await createApiKey(running.db.prisma, 'b')).key;
});

after(async () => {
  await running?.stop();
  await drop?.();
});

const q = (query: string, variables: Record<string, unknown> = {}, key = keyA) =>
  gql(running.api!.url, query, variables, key);
const origin = () => new URL(running.api!.url).origin;

/** A finished generation of `key` and its image URLs. */
async function finished(mutation: string, key = keyA): Promise<{ id: string; urls: string[] }> {
  const { id } = Object.values((await q(`mutation { ${mutation} { id } }`, {}, key)).data!)[0] as { id: string };
  const ws = wsClient(running.api!.url, key);
  const last = (
    await collect(ws, 'subscription($id: ID!) { generationUpdated(id: $id) { status images { url } } }', { id })
  ).at(-1)!.data!.generationUpdated;
  await ws.dispose();
  assert.equal(last.status, 'SUCCEEDED');
  return { id, urls: last.images.map((i: { url: string }) => origin() + i.url) };
}

const rowsOf = async (id: string) => {
  const [r] = await running.db.query<{ g: number; i: number; j: number }>(
    `SELECT (SELECT count(*) FROM "Generation" WHERE "id" = $1)::int AS g,
            (SELECT count(*) FROM "Image" WHERE "generationId" = $1)::int AS i,
            (SELECT count(*) FROM "Job" WHERE "generationId" = $1)::int AS j`,
    [id],
  );
  return r;
};

test('deleteGeneration: gone with its images, URLs answer 404; another key gets NOT_FOUND', async () => {
  const g = await finished('generateImages(input: { caption: "a red flower", count: 2 })');
  assert.equal((await fetch(g.urls[0])).status, 200);
  const other = await q('mutation($id: ID!) { deleteGeneration(id: $id) }', { id: g.id }, keyB);
  assert.equal(codeOf(other), 'NOT_FOUND');
  assert.deepEqual((await q('mutation($id: ID!) { deleteGeneration(id: $id) }', { id: g.id })).data, {
    deleteGeneration: g.id,
  });
  assert.deepEqual(await rowsOf(g.id), { g: 0, i: 0, j: 0 });
  for (const url of g.urls) assert.equal((await fetch(url)).status, 404);
  assert.equal(codeOf(await q('query($id: ID!) { generation(id: $id) { id } }', { id: g.id })), 'NOT_FOUND');
  assert.equal(codeOf(await q('mutation($id: ID!) { deleteGeneration(id: $id) }', { id: g.id })), 'NOT_FOUND');
});

test('a running generation deleted: its worker stops and goes on with the next one', async () => {
  const { id } = (await q('mutation { generateImages(input: { caption: "a blue flower", count: 16 }) { id } }')).data!
    .generateImages;
  const ws = wsClient(running.api!.url, keyA);
  const events = await new Promise<unknown[]>((resolve) => {
    const seen: unknown[] = [];
    let deleting = false;
    ws.subscribe(
      { query: 'subscription($id: ID!) { generationUpdated(id: $id) { status progress } }', variables: { id } },
      {
        next: (e) => {
          seen.push(e);
          const g = (e.data as { generationUpdated?: { status: string; progress: number } } | null)?.generationUpdated;
          if (!deleting && g?.status === 'RUNNING' && g.progress > 0) {
            deleting = true;
            void q('mutation($id: ID!) { deleteGeneration(id: $id) }', { id });
          }
        },
        error: () => resolve(seen),
        complete: () => resolve(seen),
      },
    );
  });
  await ws.dispose();
  assert.ok(events.length >= 2);
  assert.deepEqual(await rowsOf(id), { g: 0, i: 0, j: 0 });
  await finished('generateImages(input: { caption: "a white flower", count: 1 })');
});

test('deleteGenerations deletes what matches every criterion; an empty filter is BAD_USER_INPUT', async () => {
  await finished('interpolateNoise(input: { caption: "a pink flower", steps: 2 })');
  await finished('generateImages(input: { caption: "a pink flower" })');
  const mine = await finished('generateImages(input: { caption: "a pink flower" })', keyB);
  const cut = new Date();
  await new Promise((r) => setTimeout(r, 5));
  const later = await finished('generateImages(input: { caption: "a later flower" })');
  // generations lists what the same filter would delete
  const LIST =
    'query($b: DateTime, $k: GenerationKind) { generations(createdBefore: $b, kind: $k) { edges { node { id } } } }';
  const listed = async (v: Record<string, unknown>) =>
    ((await q(LIST, v)).data!.generations.edges as { node: { id: string } }[]).map((e) => e.node.id);
  const before = await listed({ b: cut.toISOString() });
  assert.deepEqual(before, (await listed({})).slice(1), 'all but the later one');
  assert.ok(before.length >= 2);
  assert.equal((await listed({ b: cut.toISOString(), k: 'NOISE_INTERPOLATION' })).length, 1);
  // a bound finer than the stored milliseconds: "before ...371999" takes one made at ...371 (cut down, it would not)
  const [{ made }] = await running.db.query<{ made: Date }>(
    'SELECT "createdAt" AS "made" FROM "Generation" WHERE "id" = $1',
    [later.id],
  );
  assert.ok((await listed({ b: made.toISOString().replace('Z', '999Z') })).includes(later.id));
  assert.ok(!(await listed({ b: made.toISOString() })).includes(later.id));
  const DELETE = 'mutation($f: DeleteGenerationsInput!) { deleteGenerations(filter: $f) }';
  assert.equal(codeOf(await q(DELETE, { f: {} })), 'BAD_USER_INPUT');
  assert.equal((await q(DELETE, { f: { kind: 'NOISE_INTERPOLATION' } })).data!.deleteGenerations, 1);
  assert.equal(
    (await q(DELETE, { f: { createdBefore: cut.toISOString() } })).data!.deleteGenerations,
    before.length - 1,
  );
  assert.deepEqual(await listed({}), [later.id]);
  assert.equal((await q(DELETE, { f: { createdBefore: new Date().toISOString() } })).data!.deleteGenerations, 1);
  assert.equal((await q('{ generations { edges { node { id } } } }')).data!.generations.edges.length, 0);
  assert.equal((await rowsOf(mine.id)).g, 1, "another key's generations stay");
});

test('RETENTION_DAYS: finished generations older than that are deleted, by one sweeper at a time; not one whose webhook message is still being sent', async () => {
  const old = await finished('generateImages(input: { caption: "an old flower" })');
  const recent = await finished('generateImages(input: { caption: "a recent flower" })');
  const sending = await finished('generateImages(input: { caption: "a flower whose receiver is down" })');
  await running.db.query(`UPDATE "Generation" SET "finishedAt" = now() - interval '40 days' WHERE "id" = ANY($1)`, [
    [old.id, sending.id],
  ]);
  await running.db.query(
    `INSERT INTO "WebhookDelivery" ("generationId", "event", "nextAttemptAt") VALUES ($1, 'COMPLETED', now() + interval '1 hour')`,
    [sending.id],
  );
  await running.db.query(`UPDATE "Generation" SET "finishedAt" = now() - interval '10 days' WHERE "id" = $1`, [
    recent.id,
  ]);
  const counts = await Promise.all([deleteExpired(running.db.prisma, 30), deleteExpired(running.db.prisma, 30)]);
  assert.equal(counts[0] + counts[1], 1);
  assert.equal((await rowsOf(old.id)).g, 0);
  assert.equal((await fetch(old.urls[0])).status, 404);
  assert.equal((await rowsOf(recent.id)).g, 1);
  assert.equal((await rowsOf(sending.id)).g, 1, 'kept while its message is PENDING');
  await running.db.query(`UPDATE "WebhookDelivery" SET "status" = 'FAILED' WHERE "generationId" = $1`, [sending.id]);
  assert.equal(await deleteExpired(running.db.prisma, 30), 1);
  assert.equal((await rowsOf(sending.id)).g, 0);
});

test('a retention sweep told to stop (its process shutting down) ends after the batch in hand', async () => {
  await running.db.query(
    `INSERT INTO "Generation" ("id", "kind", "status", "captions", "seed", "model", "imageCount", "finishedAt")
     SELECT gen_random_uuid(), 'TEXT_TO_IMAGE', 'SUCCEEDED', '{a flower}', 1, 'tiny', 1, now() - interval '40 days'
       FROM generate_series(1, 600)`,
  );
  assert.equal(await deleteExpired(running.db.prisma, 30, () => true), 500);
  assert.equal(await deleteExpired(running.db.prisma, 30), 100, 'the rest at the next sweep');
});

test('deleteGenerations locks its rows in id order, as a store and a cancel do: no deadlock with either', async () => {
  const key = await createApiKey(running.db.prisma, 'order');
  // two generations whose table order is not their id order (the delete's scan met the larger id first)
  const made: string[] = [];
  const tableOrder = async () =>
    (
      await running.db.query<{ id: string }>(
        'SELECT "id"::text AS "id" FROM "Generation" WHERE "apiKeyId" = $1 ORDER BY ctid',
        [key.id],
      )
    ).map((r) => r.id);
  while (made.length < 2 || [...made].sort().join() === (await tableOrder()).join()) {
    made.push((await finished('generateImages(input: { caption: "a flower", count: 1 })', key.key)).id);
    if (made.length > 2) {
      // keep the first two in table order whose ids are reversed, drop the rest
      const order = await tableOrder();
      const pair = order.findIndex((id, i) => i > 0 && order[i - 1] > id);
      if (pair > 0) {
        const keep = [order[pair - 1], order[pair]];
        await running.db.query('DELETE FROM "Generation" WHERE "apiKeyId" = $1 AND NOT "id" = ANY($2::uuid[])', [
          key.id,
          keep,
        ]);
        made.splice(0, made.length, ...keep);
      }
    }
  }
  const [low, high] = [...made].sort();
  const waiting = async () => {
    for (;;) {
      const [r] = await running.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE "datname" = current_database() AND "wait_event_type" = 'Lock' AND "query" LIKE '%DELETE FROM "Generation"%'`,
      );
      if (r.n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  let deleted: Promise<unknown> | null = null;
  // a store of a pass holding both: it locks the lower id, then (once the delete waits) the higher
  await running.db.prisma.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT 1 FROM "Generation" WHERE "id" = ${low}::uuid FOR UPDATE`;
    deleted = q(
      'mutation($f: DeleteGenerationsInput!) { deleteGenerations(filter: $f) }',
      { f: { createdBefore: new Date(Date.now() + 60_000).toISOString() } },
      key.key,
    );
    await waiting();
    await tx.$queryRaw`SELECT 1 FROM "Generation" WHERE "id" = ${high}::uuid FOR UPDATE`;
  });
  assert.deepEqual(await deleted, { data: { deleteGenerations: 2 } });
});
