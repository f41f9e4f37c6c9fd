/**
 * `npm run bench:train [-- --json] [--backends node-gpu,node,wasm,cpu] [--configs a,b,c] [--threads 1,2] [--steps N]`:
 * one GAN-INT-CLS step (D step + G step with interpolated captions) on every core (data-parallel shards,
 * src/train/shards.ts) and on one, and generator inference at batch 1 and 64 (in this thread, and at batch 64
 * on the worker's inference threads, by thread count), for the three configs of
 * the cost table, on each backend installed here. Where python3-torch is installed it runs the PyTorch
 * reference (../shared/bench/torch_gancls.py, 2 threads) in the same run and prints both side by side.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Args, runMain } from '../src/cli/args.ts';
import { Inference } from '../src/gpu-worker/inference.ts';
import { Adam } from '../src/model/adam.ts';
import { saveCheckpoint } from '../src/model/checkpoint.ts';
import type { CheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { Synthesizer } from '../src/model/synthesizer.ts';
import { initBackend } from '../src/model/backend.ts';
import { BACKENDS, type BackendName } from '../src/model/backends.ts';
import { type ImageSize, defaultModelConfig } from '../src/model/config.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { Rng } from '../src/model/random.ts';
import { type HostBatch, Shards, host } from '../src/train/shards.ts';
import { type StepOptions, trainedParams } from '../src/train/steps.ts';

const CONFIGS = [
  { name: 'a', size: 64, width: 64, batch: 64 },
  { name: 'b', size: 64, width: 32, batch: 32 },
  { name: 'c', size: 32, width: 32, batch: 64 },
] as const;
type Config = (typeof CONFIGS)[number];

const TORCH_SCRIPT = join(__dirname, '..', '..', 'shared', 'bench', 'torch_gancls.py');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeIt(f: () => unknown, repeats: number): Promise<number> {
  await f(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Median ms of one GAN-INT-CLS step with `threads` threads (one shard each). */
async function stepMs(cfg: Config, threads: number, backend: BackendName, repeats: number): Promise<number> {
  const config = defaultModelConfig({ imageSize: cfg.size as ImageSize, ngf: cfg.width, ndf: cfg.width });
  const model = buildModel(config, 1, true);
  const rng = new Rng(1);
  const t = (rows: number, ...shape: number[]) =>
    host(rng.normals(rows * shape.reduce((a, b) => a * b, 1)).map(Math.tanh), [rows, ...shape]);
  const b = cfg.batch;
  const batch: HostBatch = {
    real: t(b, cfg.size, cfg.size, 3),
    h: t(b, config.embedDim),
    hWrong: t(b, config.embedDim),
    z: t(b, config.zDim),
    hInt: t(b / 2, config.embedDim),
    zInt: t(b / 2, config.zDim),
    zPair: null,
    eps: null,
    epsInt: null,
    epsPair: null,
  };
  const optD = new Adam(trainedParams(model, 'd'));
  const optG = new Adam(trainedParams(model, 'g'));
  const shards = await Shards.start(model, { threads, count: threads, backend });
  const o: StepOptions = { variant: 'gan-int-cls', diversity: 0, objective: 'bce', textMatch: 0, textAttributes: 0 };
  const ms = await timeIt(async () => {
    await shards.step('d', optD, batch, o);
    await shards.step('g', optG, batch, o);
  }, repeats);
  await shards.close();
  optD.dispose();
  optG.dispose();
  disposeModel(model);
  return ms;
}

/** G images/s in this thread, as the service draws them (Synthesizer: eval mode, pixels read back as bytes). */
function inference(cfg: Config): { b1: number; b64: number } {
  const config = defaultModelConfig({ imageSize: cfg.size as ImageSize, ngf: cfg.width, ndf: cfg.width });
  const model = buildModel(config, 1, false);
  const synth = Synthesizer.fromModel(model, { model: config, steps: { text: 0, gan: 0, style: 0 } } as CheckpointMeta);
  const rng = new Rng(2);
  const rate = (n: number) => {
    const items = Array.from({ length: n }, () => ({ z: rng.normals(config.zDim), h: rng.normals(config.embedDim) }));
    const run = () => synth.draw(items);
    run();
    const times = Array.from({ length: 5 }, () => {
      const t0 = performance.now();
      run();
      return performance.now() - t0;
    });
    return (1000 * n) / median(times);
  };
  const r = { b1: rate(1), b64: rate(64) };
  disposeModel(model);
  return r;
}

/**
 * G images/s at batch 64 on the worker's inference threads (src/gpu-worker/inference.ts): the model saved
 * as a checkpoint, each thread loading its copy, every pass split between them.
 */
async function threadedInference(cfg: Config, threads: number, backend: BackendName): Promise<number> {
  const config = defaultModelConfig({ imageSize: cfg.size as ImageSize, ngf: cfg.width, ndf: cfg.width });
  const model = buildModel(config, 1, false);
  const dir = join(await mkdtemp(join(tmpdir(), 'ganvas-bench-')), cfg.name);
  await saveCheckpoint(dir, model, { steps: { text: 0, gan: 0, style: 0 } });
  disposeModel(model);
  const pool = await Inference.start(dir, backend, () => {}, threads);
  const rng = new Rng(2);
  const items = Array.from({ length: 64 }, () => ({ z: rng.normals(config.zDim), h: rng.normals(config.embedDim) }));
  await pool.draw(items);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await pool.draw(items);
    times.push(performance.now() - t0);
  }
  await pool.stop();
  return 64_000 / median(times);
}

/** PyTorch's step and batch-64 inference on this machine now, or null where python3-torch is missing. */
function torch(cfg: Config): { stepMs: number; imagesPerSecB64: number; version: string } | null {
  if (!existsSync(TORCH_SCRIPT)) return null;
  const r = spawnSync(
    existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
    [TORCH_SCRIPT, String(cfg.size), String(cfg.width), String(cfg.width), String(cfg.batch), '2'],
    { encoding: 'utf8' },
  );
  const m = /torch (\S+) .*gancls_step_ms=(\d+) G_infer_64_ms=(\d+)/.exec(r.stdout ?? '');
  return m ? { version: m[1], stepMs: Number(m[2]), imagesPerSecB64: 64_000 / Math.max(1, Number(m[3])) } : null;
}

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const json = a.flag('json');
  const only = a.string('configs', 'a,b,c').split(',');
  const cores = availableParallelism();
  const threadCounts = a
    .string('threads', cores > 1 ? `1,${cores}` : '1')
    .split(',')
    .map(Number);
  const one = a.string('one-backend');
  const wanted = a.string('backends') ?? BACKENDS.filter((n) => n !== 'cpu').join(',');
  const stepsGiven = a.int('steps', 0); // 0: per config (2 for a, 4 for b and c)
  a.end();
  const refuse = (what: string, given: string[], known: readonly string[]) => {
    const bad = given.filter((g) => !known.includes(g));
    if (bad.length) throw new Error(`unknown ${what} ${bad.join(', ')} (known: ${known.join(', ')})`);
  };
  refuse(
    'config',
    only,
    CONFIGS.map((c) => c.name),
  );
  refuse('backend', (one ?? wanted).split(','), BACKENDS);
  if (!threadCounts.every((t) => Number.isInteger(t) && t >= 1))
    throw new Error(`--threads must be a list of thread counts, e.g. 1,${cores}`);
  if (!one) {
    // one child process per backend: a process holds one backend, and a failed native load taints the next
    for (const backend of wanted.split(',')) {
      const args = [
        '-r',
        '@swc-node/register',
        __filename,
        '--one-backend',
        backend,
        '--configs',
        only.join(','),
        '--threads',
        threadCounts.join(','),
        ...(json ? ['--json'] : []),
        ...(stepsGiven ? ['--steps', String(stepsGiven)] : []),
      ];
      // a backend that cannot load exits 2 (quietly); any other failure is one, with its error shown
      const child = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'pipe'] });
      if (child.status === 2) {
        if (!json) console.log(`${backend}: not installed here, skipped`);
      } else if (child.status !== 0) {
        if (child.stderr) process.stderr.write(child.stderr);
        console.error(`${backend}: the benchmark failed (exit ${child.status ?? child.signal})`);
        process.exitCode = 1;
      }
    }
    if (!json && !wanted.split(',').includes('cpu'))
      console.log('cpu (pure JS, ~70x slower than wasm): not measured; add --backends cpu to measure it');
    return;
  }
  let backend: BackendName;
  try {
    backend = await initBackend(one as BackendName);
  } catch {
    process.exit(2);
  }
  if (!json)
    console.log(`\nbackend ${backend}, ${cores} cores; PyTorch CPU (2 threads) measured in this run, in brackets`);
  for (const cfg of CONFIGS.filter((c) => only.includes(c.name))) {
    const repeats = stepsGiven || (cfg.name === 'a' ? 2 : 4);
    const steps = new Map<number, number>();
    for (const threads of threadCounts) steps.set(threads, await stepMs(cfg, threads, backend, repeats));
    const g = inference(cfg);
    const byThreads = new Map<number, number>();
    for (const threads of threadCounts) byThreads.set(threads, await threadedInference(cfg, threads, backend));
    const ref = torch(cfg);
    const best = Math.min(...steps.values());
    const row = {
      config: cfg.name,
      backend,
      stepMsByThreads: Object.fromEntries([...steps].map(([t, ms]) => [t, Math.round(ms)])),
      imagesPerSecB1: Math.round(g.b1),
      imagesPerSecB64: Math.round(g.b64),
      inferenceThreadsImagesPerSecB64: Object.fromEntries([...byThreads].map(([t, r]) => [t, Math.round(r)])),
      torch: ref
        ? { version: ref.version, stepMs: ref.stepMs, imagesPerSecB64: Math.round(ref.imagesPerSecB64) }
        : null,
      stepVsTorch: ref ? Number((best / ref.stepMs).toFixed(2)) : null,
    };
    if (json) {
      console.log(JSON.stringify(row));
      continue;
    }
    const vs = (x: string) => (ref ? x : '');
    console.log(
      `(${cfg.name}) ${cfg.size}x${cfg.size} ngf=ndf=${cfg.width} batch ${cfg.batch}: step ${[...steps].map(([t, ms]) => `${Math.round(ms)} ms on ${t} thread${t > 1 ? 's' : ''}`).join(', ')}` +
        vs(` [${ref?.stepMs}] = ${row.stepVsTorch}x PyTorch's time`) +
        `; G ${row.imagesPerSecB1} img/s at batch 1, ${row.imagesPerSecB64} img/s at batch 64` +
        vs(` [${row.torch?.imagesPerSecB64}] = ${(g.b64 / (ref?.imagesPerSecB64 ?? 1)).toFixed(1)}x`) +
        `; on the worker's inference threads ${[...byThreads].map(([t, r]) => `${Math.round(r)} img/s on ${t}`).join(', ')}` +
        vs(` = ${(Math.max(...byThreads.values()) / (ref?.imagesPerSecB64 ?? 1)).toFixed(1)}x`),
    );
  }
  if (!json && !existsSync(TORCH_SCRIPT)) console.log(`PyTorch reference not run: ${TORCH_SCRIPT} is missing`);
  else if (!json)
    console.log(
      `(PyTorch figures: ${TORCH_SCRIPT}; none where python3-torch is not installed: apt-get install python3-torch)`,
    );
});
