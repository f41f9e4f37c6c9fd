/**
 * Faults under load, as separate processes on this machine's Postgres, with counts (submitted, completed,
 * duplicated, lost): the API restarted while clients submit, and the Postgres server itself restarted,
 * after which the API and the worker recover without being restarted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { migratedPostgres } from './support/db.ts';
import { gql } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';
import { ProcessGroup } from './support/processes.ts';

let drop: () => Promise<void>;
let group: ProcessGroup;
let key = '';

before(async () => {
  const pgdb = await migratedPostgres(__filename);
  ({ drop, key } = pgdb);
  group = new ProcessGroup({
    DATABASE_URL: pgdb.url,
    MODEL_DIR: await tinyModelDir(),
    HOST: '127.0.0.1',
    GANVAS_BACKEND: 'wasm',
    WORKER_LEASE_SECONDS: '3',
    WORKER_MAX_BATCH: '4',
    RATE_LIMIT_PER_MINUTE: '100000', // the tests' load, one key, well past the default 120 a minute
  });
});

after(async () => {
  await group.killAll();
  await drop();
});

/** Submits one generation every `everyMs` until `stop()`; a request counts as submitted once it has an id. */
function submitter(url: () => string, everyMs: number) {
  const ids: string[] = [];
  /** Each refused request's error code (NETWORK: no answer). */
  const refused: string[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const r = await gql(
        url(),
        `mutation { generateImages(input: { caption: "load ${i}", count: 2, seed: ${i} }) { id } }`,
        {},
        key,
      ).catch(() => null);
      if (r?.data?.generateImages?.id) ids.push(r.data.generateImages.id);
      else refused.push(r ? String(r.errors?.[0]?.extensions?.code) : 'NETWORK');
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return { ids, refused, stop: async () => ((running = false), await loop) };
}

async function settle(url: string, ids: string[], label: string): Promise<void> {
  let finals: { status: string; images: { index: number }[] }[] = [];
  for (const deadline = Date.now() + 90_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 300))) {
    finals = [];
    for (const id of ids)
      finals.push(
        (await gql(url, `{ generation(id: "${id}") { status images { index } } }`, {}, key)).data?.generation ?? {
          status: 'MISSING',
          images: [],
        },
      );
    if (finals.every((f) => f.status === 'SUCCEEDED')) break;
  }
  const completed = finals.filter((f) => f.status === 'SUCCEEDED').length;
  const duplicated = finals.reduce((n, f) => n + f.images.length - new Set(f.images.map((i) => i.index)).size, 0);
  console.log(
    `${label}: submitted ${ids.length}, completed ${completed}, duplicated ${duplicated}, lost ${ids.length - completed}`,
  );
  assert.ok(ids.length > 0);
  assert.equal(duplicated, 0);
  assert.equal(completed, ids.length, 'lost requests');
}

test('API restarted under load: no accepted request lost', async () => {
  const worker = await group.worker('w-api-restart');
  const first = await group.api({ PORT: '4310' });
  let url = first.url;
  const load = submitter(() => url, 30);
  await new Promise((r) => setTimeout(r, 1500));
  await first.proc.kill('SIGTERM');
  url = (await group.api({ PORT: '4310' })).url;
  await new Promise((r) => setTimeout(r, 1500));
  await load.stop();
  await settle(url, load.ids, 'API restart');
  await worker.kill('SIGTERM');
});

test('Postgres restarted under load, then down a moment: requests refused SERVICE_UNAVAILABLE, API and worker recover on their own', async (t) => {
  const versions = (() => {
    try {
      return readdirSync('/etc/postgresql');
    } catch {
      return [];
    }
  })();
  if (versions.length === 0 || process.getuid?.() !== 0)
    return t.skip('needs root and a local Postgres cluster to restart');
  const worker = await group.worker('w-pg-restart');
  const { url } = await group.api({ PORT: '4311' });
  const load = submitter(() => url, 30);
  await new Promise((r) => setTimeout(r, 1000));
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0], 'main', 'restart'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 2500));
  await load.stop();
  console.log(
    `Postgres restart: ${load.refused.length} requests refused during the restart (not accepted, the client retries): ${[...new Set(load.refused)].join(', ') || 'none'}`,
  );
  await settle(url, load.ids, 'Postgres restart');
  // then the server down a moment: a request is answered SERVICE_UNAVAILABLE (send it again), an image 503, not an
  // internal error; and after it requests complete again
  const image = (await gql(url, `{ generation(id: "${load.ids[0]}") { images { url } } }`, {}, key)).data!.generation
    .images[0].url as string;
  const cluster = (action: string) =>
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0], 'main', action], { stdio: 'ignore' });
  cluster('stop');
  try {
    for (const doc of [
      'mutation { generateImages(input: { caption: "down", count: 1 }) { id } }',
      '{ generations(first: 5) { edges { node { id } } } }',
    ]) {
      const r = await gql(url, doc, {}, key);
      assert.equal(r.errors?.[0]?.extensions?.code, 'SERVICE_UNAVAILABLE', JSON.stringify(r));
      assert.equal(r.errors?.[0]?.extensions?.retryAfterSeconds, 1);
    }
    const png = await fetch(new URL(image, url));
    assert.equal(png.status, 503);
    assert.equal(png.headers.get('retry-after'), '1');
  } finally {
    cluster('start');
  }
  const back = submitter(() => url, 30);
  // until a few are admitted (the cluster takes its time to start on a busy machine), 30 s at most
  for (const deadline = Date.now() + 30_000; back.ids.length < 5 && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 100));
  await back.stop();
  await settle(url, back.ids, 'Postgres back after a stop');
  // both processes are the ones started before the restart
  assert.equal(worker.child.exitCode, null);
  // each outage (the restart, the stop) is logged once, and its end (not a warning per claim)
  const failedClaims = worker.output().match(/claim failed/g)?.length ?? 0;
  assert.ok(failedClaims <= 2, `${failedClaims} claim warnings for two outages`);
  assert.equal(worker.output().match(/claiming again/g)?.length ?? 0, failedClaims);
  await worker.kill('SIGTERM');
});
