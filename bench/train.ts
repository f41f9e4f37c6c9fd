/**
 * `npm run bench:train [-- --json] [--backends node-gpu,node,wasm,cpu] [--configs a,b,c] [--steps N]`: one GAN-INT-CLS step (D step + G step
 * with interpolated captions) and generator inference at batch 1 and 64, for the three configs of PAPER.md's
 * cost table, on each backend installed here, beside the PyTorch-on-CPU figures measured on these machines.
 */
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { Args, runMain } from '../src/cli/args.ts';
import { Adam } from '../src/model/adam.ts';
import { BACKENDS, type BackendName, initBackend } from '../src/model/backend.ts';
import { type ImageSize, defaultModelConfig } from '../src/model/config.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { Rng } from '../src/model/random.ts';
import { type GanBatch, discriminatorStep, generatorStep } from '../src/train/steps.ts';

const CONFIGS = [
  { name: 'a', size: 64, width: 64, batch: 64, pytorch: { stepMs: 31_100, imagesPerSecB64: 64 / 2.5 } },
  { name: 'b', size: 64, width: 32, batch: 32, pytorch: { stepMs: 2_740, imagesPerSecB64: 64 / 0.69 } },
  { name: 'c', size: 32, width: 32, batch: 64, pytorch: { stepMs: 960, imagesPerSecB64: 64 / 0.15 } },
] as const;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timeIt(f: () => void, repeats: number): number {
  f(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function measure(cfg: (typeof CONFIGS)[number], steps: number) {
  const config = defaultModelConfig({ imageSize: cfg.size as ImageSize, ngf: cfg.width, ndf: cfg.width });
  const model = buildModel(config, 1, true);
  const rng = new Rng(1);
  const t = (shape: number[]) => tf.tensor(rng.normals(shape.reduce((a, b) => a * b, 1)), shape);
  const b = cfg.batch;
  const batch: GanBatch = { zPair: null, ...tf.tidy(() => ({
    real: tf.tanh(t([b, cfg.size, cfg.size, 3])) as tf.Tensor4D,
    h: t([b, config.embedDim]) as tf.Tensor2D,
    hWrong: t([b, config.embedDim]) as tf.Tensor2D,
    z: t([b, config.zDim]) as tf.Tensor2D,
    hInt: t([b / 2, config.embedDim]) as tf.Tensor2D,
    zInt: t([b / 2, config.zDim]) as tf.Tensor2D,
  })) };
  const optD = new Adam(model.discriminator!.params.trainable);
  const optG = new Adam(model.generator.params.trainable);
  const stepMs = timeIt(() => {
    discriminatorStep(model, optD, batch, 'gan-int-cls');
    generatorStep(model, optG, batch, 'gan-int-cls');
  }, steps);
  const infer = (n: number) => {
    const z = batch.z.slice(0, Math.min(n, b));
    const h = batch.h.slice(0, Math.min(n, b));
    const zz = n > b ? tf.concat([z, z]) : z;
    const hh = n > b ? tf.concat([h, h]) : h;
    const ms = timeIt(() => tf.tidy(() => model.generator.forward(zz as tf.Tensor2D, hh as tf.Tensor2D, false).dataSync()), 5);
    tf.dispose([z, h, zz, hh]);
    return (1000 * n) / ms;
  };
  const imagesPerSecB1 = infer(1);
  const imagesPerSecB64 = infer(64);
  tf.dispose(Object.values(batch));
  optD.dispose();
  optG.dispose();
  disposeModel(model);
  return { stepMs, imagesPerSecB1, imagesPerSecB64 };
}

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const json = a.flag('json');
  const only = a.string('configs', 'a,b,c').split(',');
  const one = a.string('one-backend');
  if (!one) {
    // one child process per backend: a process holds one backend, and a failed native load taints the next
    const wanted = a.string('backends') ?? BACKENDS.filter((n) => n !== 'cpu').join(',');
    for (const backend of wanted.split(',')) {
      const args = ['-r', '@swc-node/register', __filename, '--one-backend', backend, '--configs', only.join(','), ...(json ? ['--json'] : []), ...(a.string('steps') ? ['--steps', a.string('steps')!] : [])];
      const child = spawnSync(process.execPath, args, { stdio: ['ignore', 'inherit', 'ignore'] });
      if (child.status !== 0 && !json) console.log(`${backend}: not installed here, skipped`);
    }
    if (!json && !wanted.split(',').includes('cpu')) console.log('cpu (pure JS, ~70x slower than wasm): not measured; add --backends cpu to measure it');
    return;
  }
  try {
    await initBackend(one as BackendName);
  } catch {
    process.exit(2);
  }
  if (!json) console.log(`\nbackend ${one} (PyTorch 1.13 CPU, 2 threads, measured on these machines, in brackets)`);
  for (const cfg of CONFIGS.filter((c) => only.includes(c.name))) {
    const r = measure(cfg, a.int('steps', cfg.name === 'a' ? 2 : 4));
    const row = { config: cfg.name, backend: one, threads: 1, stepMs: Math.round(r.stepMs), imagesPerSecB1: Math.round(r.imagesPerSecB1), imagesPerSecB64: Math.round(r.imagesPerSecB64) };
    if (json) console.log(JSON.stringify(row));
    else
      console.log(
        `(${cfg.name}) ${cfg.size}x${cfg.size} ngf=ndf=${cfg.width} batch ${cfg.batch}: step ${row.stepMs} ms [${cfg.pytorch.stepMs}] = ${(row.stepMs / cfg.pytorch.stepMs).toFixed(2)}x PyTorch's time; ` +
          `G ${row.imagesPerSecB1} img/s at batch 1, ${row.imagesPerSecB64} img/s at batch 64 [${Math.round(cfg.pytorch.imagesPerSecB64)}] = ${(row.imagesPerSecB64 / cfg.pytorch.imagesPerSecB64).toFixed(1)}x`,
      );
  }
});
