/**
 * `npm run bench:service [-- --json] [--images N]`: the service's cost over the model, in one process tree
 * on this machine's Postgres: the raw generator's images/s beside the same images through GraphQL +
 * Postgres + worker + subscription (the ratio), mutation-to-SUCCEEDED latency at light and heavy load,
 * `generations` page queries/s, the time one event takes to reach 1,000 subscribers, and fairness: a light
 * key's wait for one image while a heavy key has its queue full.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { Args, runMain } from '../src/cli/args.ts';
import { loadConfig } from '../src/config.ts';
import { initBackend } from '../src/model/backend.ts';
import { saveCheckpoint } from '../src/model/checkpoint.ts';
import { readCheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { defaultModelConfig } from '../src/model/config.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { noiseForSeed } from '../src/model/random.ts';
import { Synthesizer } from '../src/model/synthesizer.ts';
import { createApiKey } from '../src/auth/keys.ts';
import { startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

async function modelDir(): Promise<string> {
  const dir = process.env.MODEL_DIR ?? 'models/default';
  if (
    await readCheckpointMeta(dir).then(
      () => true,
      () => false,
    )
  )
    return dir;
  const out = join(await mkdtemp(join(tmpdir(), 'ganvas-bench-')), 'random64');
  const model = buildModel(defaultModelConfig({ ngf: 32, ndf: 32 }), 1, false);
  await saveCheckpoint(out, model, { steps: { text: 0, gan: 0, style: 0 } });
  disposeModel(model);
  return out;
}

async function freshDatabase(): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS ganvas_bench WITH (FORCE)');
  await admin.query('CREATE DATABASE ganvas_bench');
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = '/ganvas_bench';
  return url.toString();
}

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const json = a.flag('json');
  const total = a.int('images', 256);
  const batch = a.int('batch', 64);
  a.end();
  const log = (line: string) => !json && console.log(line);
  await initBackend('wasm');
  const dir = await modelDir();
  const config = {
    ...loadConfig({
      ...process.env,
      DATABASE_URL: await freshDatabase(),
      MODEL_DIR: dir,
      PORT: '0',
      WORKER_MAX_BATCH: String(batch),
      WORKER_MAX_JOBS: '64',
    }),
    quotas: { perMinute: 1e6, queued: 1e6, imagesPerDay: null },
  };
  const running = await startServices(config, { api: true, worker: true, migrate: true, auth: 'keys' }, silentLogger());
  const [main, heavyKey, lightKey] = await Promise.all(
    ['bench', 'heavy', 'light'].map(async (name) => (await createApiKey(running.db.prisma, name)).key),
  );
  const url = running.api!.url;
  const post = async (query: string, variables: Record<string, unknown> = {}, key = main) =>
    (
      (await (
        await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ query, variables }),
        })
      ).json()) as { data: any }
    ).data;
  const clients: Client[] = [];
  const ws = (key = main) => {
    const c = createClient({
      url: url.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${key}` },
    });
    clients.push(c);
    return c;
  };
  /** Resolves when the generation's subscription completes. */
  const finished = (c: Client, id: string) =>
    new Promise<void>((resolve, reject) =>
      c.subscribe(
        { query: `subscription { generationUpdated(id: "${id}") { status } }` },
        { next: () => {}, error: reject, complete: resolve },
      ),
    );

  // 1. the raw generator, in this process, batches of `batch`
  const synth = await Synthesizer.load(dir);
  const size = synth.config.imageSize;
  const h = synth.embed(['a flower with round petals'])[0];
  synth.draw([{ z: noiseForSeed(0, synth.config.zDim), h }]);
  let t0 = performance.now();
  for (let done = 0; done < total; done += batch)
    synth.draw(
      Array.from({ length: Math.min(batch, total - done) }, (_, i) => ({
        z: noiseForSeed(done + i, synth.config.zDim),
        h,
      })),
    );
  const rawPerSecond = total / ((performance.now() - t0) / 1000);
  synth.dispose();
  log(`model ${dir} (${size}x${size}), wasm backend, worker batches of up to ${batch}`);

  // 2. light load: one image at a time, mutation to SUCCEEDED event
  const c0 = ws();
  const light: number[] = [];
  await post('mutation { generateImages(input: { caption: "warm up", count: 1 }) { id } }').then((d) =>
    finished(c0, d.generateImages.id),
  );
  for (let i = 0; i < 20; i++) {
    const s = performance.now();
    const d = await post(
      `mutation { generateImages(input: { caption: "a red flower ${i}", count: 1, seed: ${i} }) { id } }`,
    );
    await finished(c0, d.generateImages.id);
    light.push(performance.now() - s);
  }

  // 3. saturation: `total` images in requests of 16, all at once; each followed live
  const heavy: number[] = [];
  t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.ceil(total / 16) }, async (_, i) => {
      const s = performance.now();
      const d = await post(
        `mutation { generateImages(input: { caption: "flower ${i}", count: 16, seed: ${i * 16} }) { id } }`,
      );
      await finished(clients[(i % 4) + 1] ?? ws(), d.generateImages.id);
      heavy.push(performance.now() - s);
    }),
  );
  const servicePerSecond = (Math.ceil(total / 16) * 16) / ((performance.now() - t0) / 1000);

  // 3b. fairness: a heavy key queues 40 generations of 16 images; meanwhile a light key asks for one image at a time
  const heavyWs = ws(heavyKey);
  const lightWs = ws(lightKey);
  const heavyIds = await Promise.all(
    Array.from(
      { length: 40 },
      async (_, i) =>
        (await post(`mutation { generateImages(input: { caption: "heavy ${i}", count: 16 }) { id } }`, {}, heavyKey))
          .generateImages.id as string,
    ),
  );
  const lightWaits: number[] = [];
  for (let i = 0; i < 10; i++) {
    const s = performance.now();
    const d = await post(
      `mutation { generateImages(input: { caption: "light ${i}", count: 1 }) { id } }`,
      {},
      lightKey,
    );
    await finished(lightWs, d.generateImages.id);
    lightWaits.push(performance.now() - s);
  }
  await Promise.all(heavyIds.map((id) => finished(heavyWs, id)));

  // 4. generations page queries/s, 8 concurrent clients for 3 s
  let queries = 0;
  const until = performance.now() + 3000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        await post(
          '{ generations(first: 20) { edges { cursor node { id status captions images { url } } } pageInfo { hasNextPage endCursor } } }',
        );
        queries++;
      }
    }),
  );
  const queriesPerSecond = queries / 3;

  // 5. one event to 1,000 subscribers (10 connections x 100 subscriptions): a queued generation canceled
  await Promise.all(running.workers.map((w) => w.stop()));
  const target = (await post('mutation { generateImages(input: { caption: "fan-out", count: 1 }) { id } }'))
    .generateImages.id;
  const conns = Array.from({ length: 10 }, () => ws());
  let ready = 0;
  const received: number[] = [];
  let readyAll: () => void = () => {};
  const allReady = new Promise<void>((r) => (readyAll = r));
  let doneAll: () => void = () => {};
  const allDone = new Promise<void>((r) => (doneAll = r));
  for (let i = 0; i < 1000; i++)
    conns[i % 10].subscribe(
      { query: `subscription { generationUpdated(id: "${target}") { status } }` },
      {
        next: (r) => {
          const status = (r.data as { generationUpdated: { status: string } }).generationUpdated.status;
          if (status === 'QUEUED' && ++ready === 1000) readyAll();
          if (status === 'CANCELED' && received.push(performance.now()) === 1000) doneAll();
        },
        error: () => {},
        complete: () => {},
      },
    );
  await allReady;
  const sent = performance.now();
  await post(`mutation { cancelGeneration(id: "${target}") { id } }`);
  await allDone;
  const fanOut = { firstMs: Math.min(...received) - sent, lastMs: Math.max(...received) - sent };

  const result = {
    model: dir,
    imageSize: size,
    batch,
    rawImagesPerSecond: +rawPerSecond.toFixed(1),
    serviceImagesPerSecond: +servicePerSecond.toFixed(1),
    ratio: +(servicePerSecond / rawPerSecond).toFixed(3),
    lightLoadMs: { p50: Math.round(quantile(light, 0.5)), p99: Math.round(quantile(light, 0.99)) },
    heavyLoadMs: {
      p50: Math.round(quantile(heavy, 0.5)),
      p99: Math.round(quantile(heavy, 0.99)),
      requests: heavy.length,
      imagesEach: 16,
    },
    fairnessLightKeyMs: {
      p50: Math.round(quantile(lightWaits, 0.5)),
      p99: Math.round(quantile(lightWaits, 0.99)),
      heavyQueuedImages: 40 * 16,
    },
    generationsPageQueriesPerSecond: Math.round(queriesPerSecond),
    fanOut1000SubscribersMs: { first: Math.round(fanOut.firstMs), last: Math.round(fanOut.lastMs) },
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(`raw generator:                ${result.rawImagesPerSecond} images/s`);
    console.log(
      `through the service:          ${result.serviceImagesPerSecond} images/s  (ratio ${result.ratio}; goal >= 0.9)`,
    );
    console.log(
      `mutation -> SUCCEEDED, light: p50 ${result.lightLoadMs.p50} ms, p99 ${result.lightLoadMs.p99} ms (1 image, one request at a time)`,
    );
    console.log(
      `mutation -> SUCCEEDED, heavy: p50 ${result.heavyLoadMs.p50} ms, p99 ${result.heavyLoadMs.p99} ms (${heavy.length} requests of 16 images at once)`,
    );
    console.log(
      `light key, heavy key's queue full: p50 ${result.fairnessLightKeyMs.p50} ms, p99 ${result.fairnessLightKeyMs.p99} ms to SUCCEEDED (1 image; 640 images of another key queued; idle: the light p50 above)`,
    );
    console.log(
      `generations page (20 items):  ${result.generationsPageQueriesPerSecond} queries/s (8 concurrent clients)`,
    );
    console.log(
      `one event to 1,000 subscribers: first after ${result.fanOut1000SubscribersMs.first} ms, last after ${result.fanOut1000SubscribersMs.last} ms`,
    );
  }
  await Promise.all(clients.map((c) => c.dispose()));
  await running.stop();
});
