/**
 * `npm run bench:service [-- --json] [--images N] [--seconds S]`: the service's cost over the model, in one
 * process tree on this machine's Postgres: the raw generator's images/s (one thread, and the worker's
 * inference threads; these again just before and after each section that is compared with them) beside the same
 * images through GraphQL + Postgres + worker + subscription (the ratio),
 * 32 clients looping on small requests with what each generation costs (transactions, NOTIFYs, events),
 * mutation-to-SUCCEEDED latency at light load (back to back, and one request a second) and heavy load,
 * `generations` page queries/s beside a bare Apollo + type-graphql server that answers the same query with the same
 * page from memory (and the CPU a query of each process on the way), one event to 1,000 subscribers, and fairness:
 * a light key's wait for one image while a heavy key has its queue full. `--json`: one JSON line per measure
 * ({measure, value, unit, baseline}).
 * `--layout split` (the default) runs the service as it is deployed: `npm run api` and `npm run worker` as two
 * processes (NODE_ENV=production), the bench's clients in a third, the page's baseline in a fourth;
 * `--layout one-process`: API, worker, baseline and clients share one process (and its event loop), as `npm start`
 * runs the first two.
 */
import 'reflect-metadata';
import { mkdtemp } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Inference } from '../src/gpu-worker/inference.ts';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { Args, runMain } from '../src/cli/args.ts';
import { cpuOf, isPostgres, processesCpu } from './cpu.ts';
import { freshDatabase } from './database.ts';
import { type BarePage, startBareApollo } from './bare-apollo.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { initBackend } from '../src/model/backend.ts';
import { saveCheckpoint } from '../src/model/checkpoint.ts';
import { readCheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { defaultModelConfig, latentDim } from '../src/model/config.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { noiseForSeed } from '../src/model/random.ts';
import { Synthesizer } from '../src/model/synthesizer.ts';
import { createApiKey } from '../src/auth/keys.ts';
import { startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import type { Database } from '../src/db/database.ts';
import { type Proc, startProcess } from '../test/support/processes.ts';

/** One figure of the run; `baseline`: what it is compared with, measured in the same run. */
interface Measure {
  measure: string;
  value: number;
  unit: string;
  baseline?: number;
}

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

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const json = a.flag('json');
  const total = a.int('images', 1024);
  const batch = a.int('batch', 64);
  const seconds = a.int('seconds', 10);
  const layout = a.string('layout', 'split');
  if (layout !== 'split' && layout !== 'one-process')
    throw new Error(`--layout is split or one-process, got "${layout}"`);
  a.end();
  const log = (line: string) => !json && console.log(line);
  const measures: Measure[] = [];
  const measure = (m: Measure) => {
    measures.push(m);
    if (json) console.log(JSON.stringify(m));
    else
      console.log(
        `${m.measure.padEnd(58)} ${String(m.value).padStart(8)} ${m.unit}${m.baseline === undefined ? '' : `  (beside ${m.baseline})`}`,
      );
  };
  /** p50 and p99 of latencies in ms; `p99Baseline` beside the p99. */
  const latency = (name: string, ms: number[], p99Baseline?: number) => {
    measure({ measure: `${name}, p50`, value: Math.round(quantile(ms, 0.5)), unit: 'ms' });
    measure({ measure: `${name}, p99`, value: Math.round(quantile(ms, 0.99)), unit: 'ms', baseline: p99Baseline });
  };
  await initBackend('wasm');
  const dir = await modelDir();
  const env = {
    DATABASE_URL: await freshDatabase('ganvas_bench'),
    MODEL_DIR: dir,
    GANVAS_BACKEND: 'wasm',
    HOST: '127.0.0.1',
    PORT: '0',
    WORKER_MAX_BATCH: String(batch),
    WORKER_MAX_JOBS: '64',
    RATE_LIMIT_PER_MINUTE: '1000000',
    QUEUE_LIMIT: '1000000',
  };
  const config = loadConfig({ ...process.env, ...env });
  const service = layout === 'split' ? await splitService(config, env) : await oneProcessService(config);
  const [main, heavyKey, lightKey] = await Promise.all(
    ['bench', 'heavy', 'light'].map(async (name) => (await createApiKey(service.db.prisma, name)).key),
  );
  const url = service.url;
  /** A query's data; its errors, should it have any, end the bench with their messages. */
  const post = async (query: string, variables: Record<string, unknown> = {}, key = main) => {
    const body = JSON.stringify({ query, variables });
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const answer = JSON.parse((await request(url, { method: 'POST', headers, body })).toString()) as {
      data: any;
      errors?: { message: string }[];
    };
    if (answer.errors?.length) throw new Error(`${query}: ${answer.errors.map((e) => e.message).join('; ')}`);
    return answer.data;
  };
  /** A generateImages mutation as the example client sends it: one document, the request in its variables. */
  const generate = async (input: { caption: string; count: number; seed?: number }, key = main) =>
    (await post('mutation($input: GenerateImagesInput!) { generateImages(input: $input) { id } }', { input }, key))
      .generateImages.id as string;
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
        { query: 'subscription($id: ID!) { generationUpdated(id: $id) { status } }', variables: { id } },
        { next: () => {}, error: reject, complete: resolve },
      ),
    );

  // 1. the raw generator: in this process on one thread (batches of `batch`, and batch-1 latency), then on
  //    the worker's inference threads
  const synth = await Synthesizer.load(dir);
  const size = synth.config.imageSize;
  const h = synth.embed(['a flower with round petals'])[0];
  const items = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ z: noiseForSeed(from + i, latentDim(synth.config)), h }));
  /** The median ms of 30 calls once 20 have warmed it, as the worker is warm when section 2 times it (the first few
   * calls here take twice as long: timing them would double the goal). */
  const warmMedian = (call: (i: number) => void) => {
    const ms: number[] = [];
    for (let i = 0; i < 50; i++) {
      const s = performance.now();
      call(i);
      if (i >= 20) ms.push(performance.now() - s);
    }
    return quantile(ms, 0.5);
  };
  const batch1Ms = warmMedian((i) => synth.draw(items(i, 1)));
  // one request's inference at light load: a caption not seen before (phi) and its image (G), as section 2 asks
  const captionToImageMs = warmMedian((i) =>
    synth.draw([{ z: items(i, 1)[0].z, h: synth.embed([`a blue flower ${i}`])[0] }]),
  );
  synth.draw(items(0, batch)); // warm at the batch size, as the worker is (Inference.warmUp)
  const t0 = performance.now();
  for (let done = 0; done < total; done += batch) synth.draw(items(done, Math.min(batch, total - done)));
  const rawPerSecond = total / ((performance.now() - t0) / 1000);
  synth.dispose();
  const pool = await Inference.start(dir, 'wasm', () => {}, config.inferenceThreads);
  await pool.warmUp(batch);
  /**
   * The worker's inference threads' images/s now, over `total` images in batches of `batch`. Sections 3 and 4 are
   * compared with the mean of this just before and just after them: on a VM whose speed drifts, the raw generator
   * measured a minute earlier was 15-35% off (docs/benchmarks.md, session 35).
   */
  const rawNow = async () => {
    const began = performance.now();
    for (let done = 0; done < total; done += batch) await pool.draw(items(done, Math.min(batch, total - done)));
    return total / ((performance.now() - began) / 1000);
  };
  const poolPerSecond = await rawNow();
  const threads = pool.threadCount;
  log(
    `model ${dir} (${size}x${size}), wasm backend, worker batches of up to ${batch}, ${threads} inference threads; ${layout === 'split' ? 'API, worker, page baseline and clients in four processes' : 'API, worker, page baseline and clients in one process'}`,
  );
  measure({ measure: 'raw generator, 1 thread, batch-1 latency', value: +batch1Ms.toFixed(1), unit: 'ms' });
  measure({
    measure: 'raw model, 1 thread, a new caption to one image (phi + G)',
    value: +captionToImageMs.toFixed(1),
    unit: 'ms',
  });
  measure({
    measure: `raw generator, 1 thread, batches of ${batch}`,
    value: +rawPerSecond.toFixed(1),
    unit: 'images/s',
  });
  measure({
    measure: `raw generator, ${threads} inference threads, batches of ${batch}`,
    value: +poolPerSecond.toFixed(1),
    unit: 'images/s',
    baseline: +rawPerSecond.toFixed(1),
  });

  // 2. light load: one image at a time, mutation to SUCCEEDED event; 200 of them, so that the p99 is not simply
  // the slowest of a few. The first 20 (API and worker just started) are not timed: on a slow machine the first
  // few, each through code not compiled yet, are among the slowest 1%, which would then time the start, not the load
  const listener = new pg.Client({ connectionString: config.databaseUrl! });
  await listener.connect();
  let notifies = 0;
  listener.on('notification', () => notifies++);
  await listener.query('LISTEN ganvas_generation');
  /** Transactions committed in the bench's database so far (every process's, reads included). */
  const commits = async () =>
    Number(
      (await listener.query('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()')).rows[0]
        .xact_commit,
    );
  /**
   * The statistics autovacuum would have gathered by then on a server with its defaults, before each timed section:
   * this machine's Postgres runs with autovacuum off, and the database is new (a page planned from none read all of the
   * key's generations and sorted them; docs/benchmarks.md, session 37).
   */
  const analyze = () => service.db.exec('ANALYZE');
  const c0 = ws();
  const light: number[] = [];
  for (let i = 0; i < 20; i++) await finished(c0, await generate({ caption: `warm up ${i}`, count: 1 }));
  await analyze();
  const lightCommits0 = await commits();
  for (let i = 0; i < 200; i++) {
    const s = performance.now();
    await finished(c0, await generate({ caption: `a red flower ${i}`, count: 1, seed: i }));
    light.push(performance.now() - s);
  }
  // the goal: p99 <= 2x one request's inference (its caption's phi and G at batch 1)
  latency('mutation -> SUCCEEDED, light load (1 image)', light, +captionToImageMs.toFixed(1));
  // what one request's path costs in round trips that end a transaction (the processes' timers too: heartbeats, sweeps)
  measure({
    measure: 'light load: database transactions a request',
    value: +(((await commits()) - lightCommits0) / light.length).toFixed(1),
    unit: 'commits',
  });

  // 3. a burst: `total` images in requests of 16, all at once; each followed live
  const heavy: number[] = [];
  await analyze();
  const burstBefore = await rawNow();
  const burstBegan = performance.now();
  await Promise.all(
    Array.from({ length: Math.ceil(total / 16) }, async (_, i) => {
      const s = performance.now();
      const id = await generate({ caption: `flower ${i}`, count: 16, seed: i * 16 });
      await finished(clients[(i % 4) + 1] ?? ws(), id);
      heavy.push(performance.now() - s);
    }),
  );
  const servicePerSecond = (Math.ceil(total / 16) * 16) / ((performance.now() - burstBegan) / 1000);
  const burstRaw = (burstBefore + (await rawNow())) / 2;
  measure({
    measure: `burst of ${total} images through the service`,
    value: +servicePerSecond.toFixed(1),
    unit: 'images/s',
    baseline: +burstRaw.toFixed(1),
  });
  measure({
    measure: 'burst: ratio to the raw generator just before and after (goal >= 0.9)',
    value: +(servicePerSecond / burstRaw).toFixed(3),
    unit: 'x',
  });
  measure({
    measure: 'burst: mutation -> SUCCEEDED (16 images), p99',
    value: Math.round(quantile(heavy, 0.99)),
    unit: 'ms',
  });

  // 4. many small requests: 32 clients each looping (mutation of 1-4 images, subscription to the end, PNG
  //    fetch) for `seconds`; what each generation costs in transactions, NOTIFYs and subscription events
  await analyze();
  const loopBefore = await rawNow();
  const commits0 = await commits();
  notifies = 0;
  /**
   * CPU seconds so far of the API, the worker, Postgres, this process (the clients, in the split layout) and the
   * page's baseline (`baselinePid`, section 6).
   */
  const cpu = async (baselinePid?: number) => {
    const processes = await processesCpu();
    return {
      api: cpuOf(processes, (p) => p.pid === service.pids.api),
      worker: cpuOf(processes, (p) => p.pid === service.pids.worker),
      postgres: cpuOf(processes, isPostgres),
      clients: cpuOf(processes, (p) => p.pid === process.pid),
      baseline: cpuOf(processes, (p) => p.pid === baselinePid),
    };
  };
  const cpu0 = await cpu();
  let events = 0;
  let generations = 0;
  let images = 0;
  const loopMs: number[] = [];
  const end = performance.now() + seconds * 1000;
  const looped = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async (_, c) => {
      const conn = ws();
      for (let i = 0; performance.now() < end; i++) {
        const s = performance.now();
        const count = 1 + ((c + i) % 4);
        const id = await generate({ caption: `loop ${c} ${i}`, count });
        const url = await new Promise<string>((resolve, reject) => {
          let first = '';
          conn.subscribe(
            {
              query: 'subscription($id: ID!) { generationUpdated(id: $id) { status images { url } } }',
              variables: { id },
            },
            {
              next: (r) => {
                events++;
                first =
                  (r.data as { generationUpdated: { images: { url: string }[] } }).generationUpdated.images[0]?.url ??
                  first;
              },
              error: reject,
              complete: () => resolve(first),
            },
          );
        });
        await request(new URL(url, service.url), { headers: { authorization: `Bearer ${main}` } });
        loopMs.push(performance.now() - s);
        generations++;
        images += count;
      }
    }),
  );
  const loopSeconds = (performance.now() - looped) / 1000;
  const loopCommits = (await commits()) - commits0;
  const cpu1 = await cpu();
  const loopRaw = (loopBefore + (await rawNow())) / 2;
  await listener.end();
  measure({
    measure: '32 clients looping on 1-4 images: generations',
    value: +(generations / loopSeconds).toFixed(1),
    unit: 'per s',
  });
  measure({
    measure: '32 clients looping on 1-4 images: images',
    value: +(images / loopSeconds).toFixed(1),
    unit: 'images/s',
    baseline: +loopRaw.toFixed(1),
  });
  measure({
    measure: '32 clients: ratio to the raw generator just before and after (goal >= 0.5)',
    value: +(images / loopSeconds / loopRaw).toFixed(3),
    unit: 'x',
  });
  latency('32 clients: mutation -> SUCCEEDED -> PNG', loopMs);
  measure({
    measure: 'per generation: database transactions (reads included)',
    value: +(loopCommits / generations).toFixed(1),
    unit: 'commits',
  });
  measure({ measure: 'per generation: NOTIFYs', value: +(notifies / generations).toFixed(1), unit: 'notifications' });
  measure({
    measure: 'per generation: subscription events',
    value: +(events / generations).toFixed(1),
    unit: 'events',
  });
  const cpuMs = (key: keyof typeof cpu0) => +((1000 * (cpu1[key] - cpu0[key])) / generations).toFixed(2);
  if (layout === 'split') {
    measure({ measure: 'per generation: CPU of the API process', value: cpuMs('api'), unit: 'ms' });
    measure({
      measure: 'per generation: CPU of the worker process (inference and PNG threads too)',
      value: cpuMs('worker'),
      unit: 'ms',
    });
    measure({ measure: "per generation: CPU of the bench's clients", value: cpuMs('clients'), unit: 'ms' });
  } else
    measure({
      measure: 'per generation: CPU of the one process (API, worker, inference, clients)',
      value: cpuMs('api'),
      unit: 'ms',
    });
  measure({ measure: 'per generation: CPU of Postgres', value: cpuMs('postgres'), unit: 'ms' });

  // 5. fairness: a heavy key queues 40 generations of 16 images; meanwhile a light key asks for one image at a time
  const heavyWs = ws(heavyKey);
  const lightWs = ws(lightKey);
  const heavyIds = await Promise.all(
    Array.from({ length: 40 }, (_, i) => generate({ caption: `heavy ${i}`, count: 16 }, heavyKey)),
  );
  const lightWaits: number[] = [];
  for (let i = 0; i < 10; i++) {
    const s = performance.now();
    await finished(lightWs, await generate({ caption: `light ${i}`, count: 1 }, lightKey));
    lightWaits.push(performance.now() - s);
  }
  await Promise.all(heavyIds.map((id) => finished(heavyWs, id)));
  measure({
    measure: "light key's 1 image with 640 of another key queued, p50",
    value: Math.round(quantile(lightWaits, 0.5)),
    unit: 'ms',
    baseline: Math.round(quantile(light, 0.5)),
  });

  // 5b. light load as an app makes it: a request now and then, every process on the path idle in between (here, after
  // the other sections that draw, so that their figures are not taken from a worker that idled for 30 s)
  const sparse: number[] = [];
  for (let i = 0; i < 30; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const s = performance.now();
    await finished(c0, await generate({ caption: `a white flower ${i}`, count: 1, seed: i }));
    sparse.push(performance.now() - s);
  }
  measure({ measure: 'one request a second (1 image, 30), p50', value: Math.round(quantile(sparse, 0.5)), unit: 'ms' });
  measure({
    measure: 'one request a second (1 image, 30), slowest',
    value: Math.round(Math.max(...sparse)),
    unit: 'ms',
  });

  // 6. generations page queries/s, 8 concurrent clients, beside a bare Apollo + type-graphql list: three rounds of 2 s
  //    each, alternating, and the median of each (on a VM whose speed drifts, one of each drifts apart); the CPU a
  //    query of each process on the way, over the three rounds
  const PAGE =
    '{ generations(first: 20) { edges { cursor node { id status captions images { url } } } pageInfo { hasNextPage endCursor } } }';
  await analyze();
  // the baseline answers the same query with the answer the API gives, from memory: the same response, as many
  // images and bytes (it answered 20 items of one image each until session 38, while the page had 50 images)
  const baseline = await bareApollo(layout, PAGE, (await post(PAGE)).generations as BarePage);
  // five untimed seconds each first: after one, the API's CPU a page still fell by a third over the next three rounds
  // as V8 optimized its path (docs/benchmarks.md, session 37)
  await queriesPerSecond(() => baseline.query(), 5000);
  await queriesPerSecond(() => post(PAGE), 5000);
  const [bare, pages]: number[][] = [[], []];
  const [bareCpu, pageCpu] = [0, 0].map(() => ({ api: 0, postgres: 0, clients: 0, baseline: 0 }));
  /** `send`'s queries/s over one round, adding each process's CPU to `spent`. */
  const round = async (send: () => Promise<unknown>, spent: typeof bareCpu) => {
    const before = await cpu(baseline.pid);
    const perSecond = await queriesPerSecond(send);
    const after = await cpu(baseline.pid);
    for (const k of Object.keys(spent) as (keyof typeof spent)[]) spent[k] += after[k] - before[k];
    return perSecond;
  };
  for (let i = 0; i < 3; i++) {
    bare.push(await round(() => baseline.query(), bareCpu));
    pages.push(await round(() => post(PAGE), pageCpu));
  }
  await baseline.close();
  measure({
    measure: 'generations page (20 with image urls), 8 clients',
    value: Math.round(quantile(pages, 0.5)),
    unit: 'queries/s',
    baseline: Math.round(quantile(bare, 0.5)),
  });
  /** CPU ms a query of `spent`'s process `k` (each round is 2 s: queries = sum of queries/s x 2). */
  const perQuery = (spent: typeof bareCpu, k: keyof typeof bareCpu, rates: number[]) =>
    +((1000 * spent[k]) / (2 * rates.reduce((a, b) => a + b))).toFixed(2);
  if (layout === 'split') {
    measure({
      measure: 'generations page: CPU a query of the API (beside the baseline)',
      value: perQuery(pageCpu, 'api', pages),
      unit: 'ms',
      baseline: perQuery(bareCpu, 'baseline', bare),
    });
    measure({
      measure: "generations page: CPU a query of the bench's clients",
      value: perQuery(pageCpu, 'clients', pages),
      unit: 'ms',
      baseline: perQuery(bareCpu, 'clients', bare),
    });
  } else
    measure({
      measure: 'generations page: CPU a query of the one process (API and clients)',
      value: perQuery(pageCpu, 'clients', pages),
      unit: 'ms',
      baseline: perQuery(bareCpu, 'clients', bare),
    });
  measure({
    measure: 'generations page: CPU a query of Postgres',
    value: perQuery(pageCpu, 'postgres', pages),
    unit: 'ms',
  });

  // 7. one event to 1,000 subscribers (10 connections x 100 subscriptions): a queued generation canceled
  await service.stopWorkers();
  const target = await generate({ caption: 'fan-out', count: 1 });
  const conns = Array.from({ length: 10 }, () => ws());
  let ready = 0;
  const received: number[] = [];
  let readyAll: () => void = () => {};
  const allReady = new Promise<void>((r) => (readyAll = r));
  let doneAll: () => void = () => {};
  const allDone = new Promise<void>((r) => (doneAll = r));
  for (let i = 0; i < 1000; i++)
    conns[i % 10].subscribe(
      { query: 'subscription($id: ID!) { generationUpdated(id: $id) { status } }', variables: { id: target } },
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
  measure({
    measure: 'one event to 1,000 subscribers: the first',
    value: Math.round(Math.min(...received) - sent),
    unit: 'ms',
  });
  measure({
    measure: 'one event to 1,000 subscribers: the last (goal <= 100)',
    value: Math.round(Math.max(...received) - sent),
    unit: 'ms',
  });

  if (!json) log(`${measures.length} measures; --json prints them one JSON line each`);
  await Promise.all(clients.map((c) => c.dispose()));
  await pool.stop();
  await service.stop();
  agent.destroy();
});

/** The service the bench drives: its GraphQL URL, a connection to its database (for keys), and how to stop it. */
interface Service {
  url: string;
  db: Database;
  /** The API's and the worker's process ids (this process's in one-process layout). */
  pids: { api: number; worker: number };
  stopWorkers(): Promise<void>;
  stop(): Promise<void>;
}

/** API and worker in this process, as `npm start` runs them. */
async function oneProcessService(config: Config): Promise<Service> {
  const running = await startServices(config, { api: true, worker: true, migrate: true, auth: 'keys' }, silentLogger());
  return {
    url: running.api!.url,
    db: running.db,
    pids: { api: process.pid, worker: process.pid },
    stopWorkers: async () => void (await Promise.all(running.workers.map((w) => w.stop()))),
    stop: () => running.stop(),
  };
}

/**
 * `npm run api` and `npm run worker` as child processes, as they are deployed: NODE_ENV=production (as the
 * Dockerfiles set it: graphql-js then skips a check in every type test, about 4% of a page's API CPU), logging warnings
 * only.
 */
async function splitService(config: Config, env: Record<string, string>): Promise<Service> {
  // this process migrates the database and keeps a connection of its own for the keys
  const own = await startServices(config, { api: false, worker: false, migrate: true }, silentLogger());
  const [apiPort, workerPort] = await Promise.all([freePort(), freePort()]);
  const quiet = { ...env, NODE_ENV: 'production', LOG_LEVEL: 'warn' };
  const api = startProcess('bin/api.ts', { ...quiet, PORT: String(apiPort) });
  const worker = startProcess('bin/worker.ts', { ...quiet, WORKER_PORT: String(workerPort), WORKER_ID: 'bench' });
  // a bench that fails, or is stopped half-way (a signal to its own pid too), takes them along: left running, they
  // would serve the next run's database (the same name) as a second API and worker
  process.once('exit', () => [api, worker].forEach((p) => p.child.kill()));
  // a signal's default ends the process without 'exit': exit on it instead
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(1));
  await Promise.all([ready(api, apiPort), ready(worker, workerPort)]);
  return {
    url: `http://127.0.0.1:${apiPort}/graphql`,
    db: own.db,
    pids: { api: api.child.pid!, worker: worker.child.pid! },
    stopWorkers: () => worker.kill(),
    stop: async () => {
      await Promise.all([api.kill(), worker.kill()]);
      await own.stop();
    },
  };
}

/**
 * The clients' HTTP requests: node:http over kept-alive connections, the body read whole (an error unless 200). The
 * clients share the machine with the service, so they cost it as little as they can: a request with fetch (undici)
 * and a trivial server's answer took 1.6-1.8 ms of CPU between them here, with this 0.37-0.54 (docs/benchmarks.md,
 * session 36).
 */
const agent = new Agent({ keepAlive: true });
function request(
  url: string | URL,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        if (res.statusCode === 200) resolve(all);
        else reject(new Error(`${method} ${url}: ${res.statusCode} ${all.toString().slice(0, 200)}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once the process answers 200 on /readyz; throws with its output if it exits first or takes 2 minutes. */
async function ready(proc: Proc, port: number): Promise<void> {
  for (const until = Date.now() + 120_000; ;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null)
      throw new Error(`a service process exited while starting:\n${proc.output()}`);
    if (Date.now() > until) throw new Error(`a service process was not ready within 2 minutes:\n${proc.output()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Queries a second from 8 concurrent clients over `ms` (2 s). */
async function queriesPerSecond(send: () => Promise<unknown>, ms = 2000): Promise<number> {
  let queries = 0;
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < until) {
        await send();
        queries++;
      }
    }),
  );
  return queries / (ms / 1000);
}

/**
 * The page's baseline (bench/bare-apollo.ts) answering `query` with `page`, laid out as the API is: in a process of its
 * own (split), or in this one (one-process).
 */
async function bareApollo(
  layout: 'split' | 'one-process',
  query: string,
  page: BarePage,
): Promise<{ pid: number; query(): Promise<unknown>; close(): Promise<void> }> {
  let url: string;
  let close: () => Promise<void>;
  let pid = process.pid;
  if (layout === 'one-process') ({ url, close } = await startBareApollo(page));
  else {
    // as the API (splitService)
    const proc = startProcess('bench/bare-apollo.ts', { NODE_ENV: 'production', BARE_PAGE: JSON.stringify(page) });
    process.once('exit', () => proc.child.kill());
    url = (await proc.waitFor(/bare Apollo at (http:\S+)/, 120_000))[1];
    close = () => proc.kill();
    pid = proc.child.pid!;
  }
  const body = JSON.stringify({ query });
  return {
    pid,
    query: async () =>
      JSON.parse(
        (await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).toString(),
      ),
    close,
  };
}
