/**
 * What an operator sees: an API and a worker as real processes on Postgres log JSON lines (a request id on
 * every HTTP request and GraphQL operation, the worker and generation ids on worker lines), answer
 * /healthz, /readyz and /metrics, and a browser opening /graphql gets GraphiQL from ganvas itself.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../src/ops/metrics.ts';
import type { Database } from '../src/db/database.ts';
import { createConnection } from 'node:net';
import { opsEndpoints, startOpsServer } from '../src/ops/probes.ts';
import { migratedPostgres } from './support/db.ts';
import { collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';
import { type Proc, ProcessGroup } from './support/processes.ts';

let drop: () => Promise<void>;
let group: ProcessGroup;
let api: { proc: Proc; url: string };
let worker: Proc;
let workerOps = '';
let key = '';

before(async () => {
  const pgdb = await migratedPostgres(__filename);
  ({ drop, key } = pgdb);
  group = new ProcessGroup({
    DATABASE_URL: pgdb.url,
    MODEL_DIR: await tinyModelDir(),
    PORT: '0',
    HOST: '127.0.0.1',
    GANVAS_BACKEND: 'wasm',
  });
  api = await group.api();
  worker = await group.worker('ops-worker');
  workerOps = new URL((await worker.waitFor(/worker health at (http:\S+)\/readyz/))[1]).origin;
});

after(async () => {
  await group.killAll();
  await drop();
});

/** The JSON lines a process wrote (every line must be one). */
const linesOf = (proc: Proc): Record<string, any>[] =>
  proc
    .output()
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

test('the API and the worker are alive and ready, with their dependencies named', async () => {
  const origin = new URL(api.url).origin;
  for (const base of [origin, workerOps]) {
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true, failing: [] });
  }
});

test('readiness is 503 naming what fails, and a check that hangs fails after its timeout', async () => {
  const endpoints = opsEndpoints(new Metrics(), {
    database: () => true,
    listen: () => Promise.reject(new Error('down')),
    inference: () => new Promise(() => {}),
  });
  const r = (await endpoints('/readyz'))!;
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.body), { ready: false, failing: ['listen', 'inference'] });
  assert.equal(await endpoints('/elsewhere'), null);
});

test("the ops server answers a request target that is not a URL's path with 404, and goes on", async () => {
  const server = await startOpsServer(opsEndpoints(new Metrics(), {}), 0, '127.0.0.1');
  const { port } = server.address() as { port: number };
  try {
    for (const target of ['//%', '//[', 'http://[', '/healthz?%zz', 'http://x/healthz'])
      // raw: fetch would not send these
      await new Promise<void>((resolve, reject) => {
        const socket = createConnection(port, '127.0.0.1', () =>
          socket.end(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        );
        let answer = '';
        socket.on('data', (d) => (answer += d));
        socket.on('error', reject);
        socket.on('close', () => {
          try {
            assert.match(answer, target.includes('/healthz') ? /^HTTP\/1\.1 200/ : /^HTTP\/1\.1 404/, target);
            resolve();
          } catch (err) {
            reject(err);
          }
        });
      });
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  } finally {
    server.close();
  }
});

test('a generation is logged with request, worker and generation ids, and counted in the metrics', async () => {
  const res = await fetch(api.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-request-id': 'client-req-42' },
    body: JSON.stringify({
      query: 'mutation Draw { generateImages(input: { caption: "a red flower", count: 3, seed: 1 }) { id } }',
    }),
  });
  assert.equal(res.headers.get('x-request-id'), 'client-req-42');
  const id = ((await res.json()) as { data: { generateImages: { id: string } } }).data.generateImages.id;
  const ws = wsClient(api.url, key);
  try {
    const updates = await collect(ws, 'subscription Follow($id: ID!) { generationUpdated(id: $id) { status } }', {
      id,
    });
    assert.equal(updates.at(-1)!.data!.generationUpdated.status, 'SUCCEEDED');
    // refused before it runs (no such field): no open subscription is left counted
    const refused = await collect(ws, 'subscription { noSuchField }', {});
    assert.equal(refused.at(-1)!.errors![0].extensions!.code, 'GRAPHQL_VALIDATION_FAILED'); // as over HTTP
  } finally {
    await ws.dispose();
  }
  await worker.waitFor(new RegExp(`"generation":"${id}".*generation succeeded`));

  const apiLines = linesOf(api.proc);
  assert.ok(
    apiLines.some((l) => l.req === 'client-req-42' && l.msg === 'http' && l.path === '/graphql' && l.status === 200),
  );
  assert.ok(
    apiLines.some(
      (l) => l.req === 'client-req-42' && l.msg === 'graphql' && l.operation === 'Draw' && l.type === 'mutation',
    ),
  );
  assert.ok(
    apiLines.some((l) => l.socket && l.msg === 'graphql' && l.operation === 'Follow' && l.type === 'subscription'),
  );
  assert.ok(apiLines.every((l) => typeof l.level === 'number' && typeof l.time === 'number'));
  const workerLines = linesOf(worker).filter((l) => l.generation === id || l.generations?.includes(id));
  assert.ok(workerLines.length >= 2, 'claimed and succeeded');
  assert.ok(workerLines.every((l) => l.worker === 'ops-worker'));

  const apiMetrics = await (await fetch(`${new URL(api.url).origin}/metrics`)).text();
  assert.match(
    apiMetrics,
    /ganvas_graphql_operation_seconds_count\{operation="Draw",type="mutation",transport="http"\} 1/,
  );
  assert.match(
    apiMetrics,
    /ganvas_graphql_operation_seconds_count\{operation="Follow",type="subscription",transport="websocket"\} 1/,
  );
  assert.match(apiMetrics, /ganvas_queue_generations\{status="QUEUED"\} 0/);
  assert.match(apiMetrics, /ganvas_queue_oldest_seconds 0/);
  assert.match(apiMetrics, /process_resident_memory_bytes/);
  assert.match(apiMetrics, /^ganvas_subscriptions_open 0$/m);
  const workerMetrics = await (await fetch(`${workerOps}/metrics`)).text();
  assert.match(workerMetrics, /ganvas_images_total 3/);
  assert.match(workerMetrics, /ganvas_generations_finished_total\{status="SUCCEEDED"\} 1/);
  assert.match(workerMetrics, /ganvas_inference_batch_images_sum 3/);
  assert.match(workerMetrics, /ganvas_inference_batch_seconds_count \d/);
  // each shows its own: an API's series of the worker's (zeros) would read as a worker that draws nothing
  const names = (text: string) => new Set([...text.matchAll(/^# TYPE (ganvas_\w+)/gm)].map((m) => m[1]));
  const [apiOwn, workerOwn] = [names(apiMetrics), names(workerMetrics)];
  for (const worker of ['ganvas_images_total', 'ganvas_inference_batch_seconds', 'ganvas_inference_batch_images'])
    assert.ok(workerOwn.has(worker) && !apiOwn.has(worker), worker);
  for (const api of ['ganvas_graphql_operation_seconds', 'ganvas_websockets_open', 'ganvas_webhook_attempts_total'])
    assert.ok(apiOwn.has(api) && !workerOwn.has(api), api);
  assert.ok(apiOwn.has('ganvas_generations_finished_total') && workerOwn.has('ganvas_generations_finished_total'));
});

test('queued work shows in the queue metrics, and client-chosen operation names cannot grow the series without bound', async () => {
  const metrics = new Metrics();
  const names = Array.from({ length: 500 }, (_, i) => metrics.operationLabel(`Op${i}`));
  assert.equal(new Set(names).size, 201); // 200 names and "other"
  assert.equal(metrics.operationLabel('not a name; DROP'), 'other');
  // no worker draws these: a second model name nobody serves is refused, so stop the worker instead
  await worker.kill('SIGTERM');
  for (let i = 0; i < 2; i++) {
    const r = await gql(
      api.url,
      'mutation { generateImages(input: { caption: "a blue flower", count: 4 }) { id } }',
      {},
      key,
    );
    assert.ok(r.data, JSON.stringify(r.errors));
  }
  const text = await (await fetch(`${new URL(api.url).origin}/metrics`)).text();
  assert.match(text, /ganvas_queue_generations\{status="QUEUED"\} 2/);
  assert.match(text, /ganvas_queue_images\{status="QUEUED"\} 8/);
  assert.ok(Number(/^ganvas_queue_oldest_seconds (\S+)/m.exec(text)![1]) > 0);
});

test(
  'the queue metrics keep their last values while the database fails or hangs; the scrape still answers',
  { timeout: 20_000 },
  async () => {
    const metrics = new Metrics();
    let answer: () => Promise<unknown[]> = async () => [{ status: 'QUEUED', jobs: 3, images: 12, oldest: 5 }];
    metrics.watchQueue({ query: () => answer() } as unknown as Database);
    const queued = /ganvas_queue_generations\{status="QUEUED"\} 3/;
    // each scrape reads again (one read serves the gauges of one scrape)
    const scrape = async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return metrics.registry.metrics();
    };
    assert.match(await scrape(), queued);
    answer = () => Promise.reject(new Error('connection refused'));
    const down = await scrape();
    assert.match(down, queued);
    assert.match(down, /process_cpu_seconds_total/);
    let reads = 0;
    answer = () => {
      reads++;
      return new Promise(() => {}); // a database that does not answer: the scrape does not wait for it
    };
    assert.match(await scrape(), queued);
    assert.match(await scrape(), queued);
    assert.equal(reads, 1, 'a hanging read is not joined by another at every scrape');
  },
);

test('a browser opening /graphql gets GraphiQL served by ganvas; clients still get GraphQL', async () => {
  const page = await fetch(api.url, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<div id="graphiql"/);
  assert.doesNotMatch(html, /https?:\/\/(?!localhost)/, 'nothing loads from another site');
  const get = await fetch(`${api.url}?query=${encodeURIComponent('{ __typename }')}`, {
    headers: { accept: 'application/json', 'apollo-require-preflight': '1', authorization: `Bearer ${key}` },
  });
  assert.deepEqual(await get.json(), { data: { __typename: 'Query' } });
  assert.equal(get.headers.get('cache-control'), 'no-store', 'per-key live answers are not cached');
});
