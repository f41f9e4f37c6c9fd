/**
 * `npm run bench:scale [-- --workers 1,4,10] [--gpu-rate 500] [--seconds 20] [--json]`: what one Postgres
 * sustains. Fake workers (the real job loop, claims, leases, PNG encoding and stores; a fake model that
 * "draws" a pass in passImages / gpu-rate seconds, as a GPU would) drain a queue kept full by a producer
 * through the real service, on this machine's Postgres. Reports images/s by worker count, the database's
 * cost per image (transactions, WAL bytes, table bytes) and where it saturates: docs/scaling.md.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Args, runMain } from '../src/cli/args.ts';
import { cpuOf, isPostgres, processesCpu } from './cpu.ts';
import { freshDatabase } from './database.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { ModelCatalog } from '../src/generations/models.ts';
import { GenerationService } from '../src/generations/service.ts';
import type { Inference } from '../src/gpu-worker/inference.ts';
import { startWorker } from '../src/gpu-worker/worker.ts';
import type { CheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { defaultModelConfig, latentDim } from '../src/model/config.ts';
import { Metrics } from '../src/ops/metrics.ts';
import { initBackend } from '../src/model/backend.ts';
import { noiseForSeed } from '../src/model/random.ts';
import { Synthesizer } from '../src/model/synthesizer.ts';
import { silentLogger } from '../src/ops/log.ts';

const SIZE = 64;

/**
 * A model that draws a pass in images / rate seconds (a GPU's time) and returns `pictures` in turn (real
 * ones of the shipped model, so PNG sizes, WAL and table bytes are real).
 */
function fakeInference(rate: number, pictures: Uint8Array[]): Inference {
  const config = defaultModelConfig({ imageSize: SIZE });
  const meta = { format: 'ganvas-checkpoint', model: config, steps: { text: 1, gan: 1, style: 1 } } as CheckpointMeta;
  let turn = 0;
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return {
    config,
    meta,
    centre: undefined,
    backend: 'fake',
    threadCount: 1,
    dead: null,
    died: new Promise(() => {}),
    embed: async (captions: string[]) => captions.map(() => new Float32Array(config.embedDim)),
    styleOf: async (images: Uint8Array[]) => images.map(() => new Float32Array(config.zDim)),
    draw: async (items: unknown[]) => {
      await wait((1000 * items.length) / rate);
      return items.map(() => pictures[turn++ % pictures.length]);
    },
    stop: async () => {},
  } as unknown as Inference;
}

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const counts = a.string('workers', '1,4,10').split(',').map(Number);
  const rate = a.int('gpu-rate', 500);
  const seconds = a.int('seconds', 20);
  const json = a.flag('json');
  a.end();
  await initBackend('wasm');
  const synth = await Synthesizer.load('models/default');
  const pictures = synth.draw(
    synth
      .embed(['a red flower with a yellow centre'])
      .flatMap((h) => Array.from({ length: 16 }, (_, i) => ({ z: noiseForSeed(i, latentDim(synth.config)), h }))),
  );
  synth.dispose();
  const url = await freshDatabase('ganvas_scale');
  const config = { ...loadConfig({ ...process.env, DATABASE_URL: url, WORKER_MAX_JOBS: '16' }) };
  const db = await openDatabase({ url });
  await migrate(db);
  const modelDir = join(await mkdtemp(join(tmpdir(), 'ganvas-scale-')), 'fake');
  const service = new GenerationService(db, new ModelCatalog(db.prisma, 'fake'), {
    quotas: { perMinute: 1e9, queued: 1e9, imagesPerDay: null },
  });
  const stat = async () =>
    (
      await db.query<{ commits: string; wal: string; images: string; bytes: string }>(
        `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text AS commits,
                pg_current_wal_lsn()::text AS wal, (SELECT count(*) FROM "Image")::text AS images,
                pg_total_relation_size('"Image"')::text AS bytes`,
      )
    )[0];
  const lsn = (s: string) => {
    const [hi, lo] = s.split('/').map((x) => parseInt(x, 16));
    return hi * 2 ** 32 + lo;
  };
  const print = (m: Record<string, unknown>) =>
    console.log(
      json
        ? JSON.stringify(m)
        : Object.entries(m)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
    );
  for (const n of counts) {
    const workers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        startWorker({
          db,
          inference: fakeInference(rate, pictures),
          modelDir,
          config: { ...config, workerId: `fake-${n}-${i}` },
          log: silentLogger(),
          metrics: new Metrics(),
        }),
      ),
    );
    // the producer keeps about 4 passes of work queued per worker
    let producing = true;
    const producer = (async () => {
      let i = 0;
      while (producing) {
        const [{ queued }] = await db.query<{ queued: number }>(
          `SELECT count(*)::int AS queued FROM "Job" WHERE "lockedBy" IS NULL`,
        );
        if (queued < n * 16)
          await Promise.all(
            Array.from({ length: 16 }, () => service.generateImages(null, { caption: `flower ${i++}`, count: 4 })),
          );
        else await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 2000)); // warm up
    const before = await stat();
    const cpu0 = cpuOf(await processesCpu(), isPostgres);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const after = await stat();
    const cpu = cpuOf(await processesCpu(), isPostgres) - cpu0;
    const s = (performance.now() - t0) / 1000;
    producing = false;
    await producer;
    await Promise.all(workers.map((w) => w.stop(true)));
    const images = Number(after.images) - Number(before.images);
    print({
      workers: n,
      gpuImagesPerSecondEach: rate,
      imagesPerSecond: +(images / s).toFixed(1),
      ofWorkersCapacity: +(images / s / (n * rate)).toFixed(2),
      commitsPerImage: +((Number(after.commits) - Number(before.commits)) / images).toFixed(2),
      walBytesPerImage: Math.round((lsn(after.wal) - lsn(before.wal)) / images),
      tableBytesPerImage: Math.round(Number(after.bytes) / Number(after.images)),
      postgresCpuMsPerImage: +((1000 * cpu) / images).toFixed(2),
      postgresCores: +(cpu / s).toFixed(2),
    });
    await db.query('TRUNCATE "Generation" CASCADE'); // no dead rows left to count in the next run's table bytes
  }
  await db.close();
});
