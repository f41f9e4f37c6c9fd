/**
 * The training run: phi by DS-SJE, then the GAN (Algorithm 1, the chosen variant), then the style
 * encoder, each stage resumable. A run folder holds checkpoint/ (rewritten every N steps, on Ctrl-C and
 * at the end), samples/ (PNG sheets: fixed captions x fixed z) and log.jsonl (losses).
 */
import { appendFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Progress } from '../cli/progress.ts';
import { encodePng, tile } from '../images/png.ts';
import { Adam } from '../model/adam.ts';
import { type CheckpointMeta, type StageSteps, loadCheckpoint, saveCheckpoint } from '../model/checkpoint.ts';
import type { ModelConfig } from '../model/config.ts';
import { type Variant, usesInterpolation } from '../model/losses.ts';
import { type Model, buildModel } from '../model/model.ts';
import { Rng } from '../model/random.ts';
import { Synthesizer } from '../model/synthesizer.ts';
import { CaptionEmbeddings, TrainingSet, disposeBatch, ganBatch } from './data.ts';
import { discriminatorStep, generatorStep, styleStep, textStep } from './steps.ts';

export const STAGES = ['text', 'gan', 'style'] as const;
export type Stage = (typeof STAGES)[number];

export interface TrainOptions {
  data: string;
  out: string;
  stages: Stage[];
  variant: Variant;
  /** Total steps per stage; a resumed run continues to these. */
  steps: StageSteps;
  batch: number;
  lr: number;
  /** Halve the learning rate every this many steps of a stage (0: never). */
  lrDecayEvery: number;
  /** Weight of the mode-seeking term in G's loss (0: the paper's objective). */
  diversity: number;
  sampleEvery: number;
  checkpointEvery: number;
  seed: number;
  model: ModelConfig;
  log: (line: string) => void;
}

const SAMPLE_CAPTIONS = 8;
const SAMPLE_NOISES = 8;

type Optimizers = Record<'text' | 'g' | 'd' | 'style', Adam>;

function optimizersFor(model: Model, lr: number): Optimizers {
  const prefixed = (...nets: [string, Map<string, tf.Variable>][]) =>
    new Map(nets.flatMap(([net, params]) => [...params].map(([n, v]) => [`${net}/${n}`, v] as const)));
  return {
    text: new Adam(prefixed(['text', model.text.params.trainable], ['image', model.image!.params.trainable]), lr),
    g: new Adam(model.generator.params.trainable, lr),
    d: new Adam(model.discriminator!.params.trainable, lr),
    style: new Adam(model.style.params.trainable, lr),
  };
}

export async function train(o: TrainOptions): Promise<CheckpointMeta> {
  const checkpointDir = join(o.out, 'checkpoint');
  await mkdir(join(o.out, 'samples'), { recursive: true });
  const resumed = await stat(join(checkpointDir, 'checkpoint.json')).then(() => true, () => false);
  let model: Model;
  let steps: StageSteps = { text: 0, gan: 0, style: 0 };
  let wall: StageSteps = { text: 0, gan: 0, style: 0 };
  let rng = new Rng(o.seed);
  let optimizers: Optimizers;
  if (resumed) {
    const loaded = await loadCheckpoint(checkpointDir, true);
    model = loaded.model;
    steps = loaded.meta.steps;
    wall = loaded.meta.wallSeconds ?? wall;
    if (loaded.meta.rng) rng = Rng.fromState(loaded.meta.rng);
    optimizers = optimizersFor(model, o.lr);
    for (const [name, state] of loaded.optimizers) optimizers[name as keyof Optimizers]?.load(state);
    o.log(`resuming ${checkpointDir} at text ${steps.text}, gan ${steps.gan}, style ${steps.style} steps`);
  } else {
    model = buildModel(o.model, o.seed, true);
    optimizers = optimizersFor(model, o.lr);
  }
  const set = await TrainingSet.load(o.data, model.config.imageSize, o.log);

  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    o.log('\nstopping: writing a checkpoint (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const save = async () =>
    saveCheckpoint(checkpointDir, model, { steps: { ...steps }, wallSeconds: { ...wall }, rng: rng.save(), training: { ...o, log: undefined, model: undefined } }, { optimizers });
  /** Adds the time since the last call to a stage's wall time. */
  let lap = Date.now();
  const clock = (stage: Stage) => {
    const now = Date.now();
    wall[stage] += (now - lap) / 1000;
    lap = now;
  };
  const record = (stage: Stage, step: number, losses: Record<string, number>) =>
    appendFile(join(o.out, 'log.jsonl'), JSON.stringify({ stage, step, ...losses }) + '\n');
  const setLr = (opt: Adam, step: number) => {
    opt.lr = o.lr * (o.lrDecayEvery > 0 ? 0.5 ** Math.floor(step / o.lrDecayEvery) : 1);
  };
  const fmt = (l: Record<string, number>) => Object.entries(l).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' ');

  try {
    if (o.stages.includes('text') && steps.text < o.steps.text) {
      const progress = new Progress('text (DS-SJE)', o.steps.text, steps.text);
      lap = Date.now();
      while (steps.text < o.steps.text && !stop) {
        setLr(optimizers.text, steps.text);
        const { images, ids } = set.textBatch(o.batch, model.config, rng);
        const losses = textStep(model, optimizers.text, images, ids);
        tf.dispose([images, ids]);
        steps.text++;
        clock('text');
        progress.update(steps.text, fmt(losses));
        if (steps.text % 10 === 0) await record('text', steps.text, losses);
        if (steps.text % o.checkpointEvery === 0) await save();
      }
    }

    const needsEmbeddings = (o.stages.includes('gan') && steps.gan < o.steps.gan) || (o.stages.includes('style') && steps.style < o.steps.style);
    const synth = Synthesizer.fromModel(model, { format: 'ganvas-checkpoint', version: 1, model: model.config, steps, createdAt: '' });
    const emb = needsEmbeddings && !stop ? CaptionEmbeddings.compute(set, (c) => synth.embed(c)) : null;
    const sampleCaptions = set.classes.slice(0, SAMPLE_CAPTIONS).map((c) => set.samples.find((s) => s.classId === c)!.captions[0]);
    const sampleNoise = new Rng(12345).normals(SAMPLE_NOISES * model.config.zDim);
    const writeSamples = async (name: string) => {
      const h = synth.embed(sampleCaptions);
      const z = (k: number) => sampleNoise.subarray(k * model.config.zDim, (k + 1) * model.config.zDim);
      const images = synth.draw(sampleCaptions.flatMap((_, i) => Array.from({ length: SAMPLE_NOISES }, (_, k) => ({ z: z(k), h: h[i] }))));
      const sheet = tile(images, model.config.imageSize, SAMPLE_NOISES);
      await writeFile(join(o.out, 'samples', `${name}.png`), encodePng(sheet.rgb, sheet.width, sheet.height, { captions: sampleCaptions.join('\n') }));
    };

    if (emb && o.stages.includes('gan') && steps.gan < o.steps.gan) {
      const progress = new Progress(`gan (${o.variant})`, o.steps.gan, steps.gan);
      lap = Date.now();
      while (steps.gan < o.steps.gan && !stop) {
        setLr(optimizers.g, steps.gan);
        setLr(optimizers.d, steps.gan);
        const batch = ganBatch(set, emb, o.batch, model.config.zDim, usesInterpolation(o.variant), o.diversity > 0, rng);
        const losses = { ...discriminatorStep(model, optimizers.d, batch, o.variant), ...generatorStep(model, optimizers.g, batch, o.variant, o.diversity) };
        disposeBatch(batch);
        steps.gan++;
        clock('gan');
        progress.update(steps.gan, fmt({ d: losses.d, g: losses.g, ...(o.diversity > 0 ? { ms: losses.ms } : {}) }));
        if (steps.gan % 10 === 0) await record('gan', steps.gan, losses);
        if (steps.gan % o.sampleEvery === 0) await writeSamples(`gan_${String(steps.gan).padStart(6, '0')}`);
        if (steps.gan % o.checkpointEvery === 0) await save();
      }
    }

    if (emb && o.stages.includes('style') && steps.style < o.steps.style) {
      const progress = new Progress('style encoder', o.steps.style, steps.style);
      lap = Date.now();
      while (steps.style < o.steps.style && !stop) {
        setLr(optimizers.style, steps.style);
        const picks = Array.from({ length: o.batch }, () => rng.int(set.samples.length));
        const h = tf.tensor2d(picks.flatMap((i) => [...emb.vector(i, rng)]), [o.batch, emb.dim]);
        const z = tf.tensor2d(rng.normals(o.batch * model.config.zDim), [o.batch, model.config.zDim]);
        const losses = styleStep(model, optimizers.style, z, h);
        tf.dispose([h, z]);
        steps.style++;
        clock('style');
        progress.update(steps.style, fmt(losses));
        if (steps.style % 10 === 0) await record('style', steps.style, losses);
        if (steps.style % o.checkpointEvery === 0) await save();
      }
    }
    await save();
    if (steps.gan > 0) await writeSamples(`final_gan_${String(steps.gan).padStart(6, '0')}`);
    o.log(`checkpoint: ${checkpointDir} (text ${steps.text}, gan ${steps.gan}, style ${steps.style} steps)${stop ? ' - stopped early' : ''}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { format: 'ganvas-checkpoint', version: 1, model: model.config, steps, wallSeconds: wall, createdAt: new Date().toISOString() };
}
