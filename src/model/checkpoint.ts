/**
 * A checkpoint is one folder:
 *   checkpoint.json   format, model config, steps done per stage, training config and Rng state
 *   weights.json/.bin every network's parameters and batch-norm statistics, by "network/param" name
 *                     (weights.json is a TensorFlow.js weights manifest: tf.io.decodeWeights reads weights.bin)
 *   optimizer.json/.bin  Adam step, learning rate and moments per optimizer (training checkpoints only)
 * Inference reads the first two and only the networks it needs. A save replaces these files and keeps any other in
 * the folder (an evaluation, a model card, sample sheets).
 */
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Adam } from './adam.ts';
import { CHECKPOINT_FORMAT, type CheckpointMeta, readCheckpointMeta } from './checkpoint-meta.ts';
import { type ModelConfig, validateModelConfig } from './config.ts';
import { INFERENCE_NETWORKS, type Model, type NetworkName, buildModel, disposeModel, networkParams } from './model.ts';
import {
  type StoredDtype,
  type TensorEntry,
  fromTfjsManifest,
  readTensors,
  toTfjsManifest,
  writeTensors,
} from './tensor-file.ts';

interface OptimizerManifest {
  [optimizer: string]: { step: number; lr: number; tensors: TensorEntry[] };
}

export async function saveCheckpoint(
  dir: string,
  model: Model,
  meta: Omit<CheckpointMeta, 'format' | 'version' | 'model' | 'createdAt'>,
  options: { optimizers?: Record<string, Adam>; dtype?: StoredDtype; networks?: readonly NetworkName[] } = {},
): Promise<void> {
  const tmp = `${dir}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const tensors: { name: string; shape: number[]; values: Float32Array }[] = [];
  for (const [net, params] of networkParams(model)) {
    if (options.networks && !options.networks.includes(net)) continue;
    for (const [name, v] of params.all())
      tensors.push({ name: `${net}/${name}`, shape: v.shape, values: (await v.data()) as Float32Array });
  }
  const weights = await writeTensors(join(tmp, 'weights.bin'), tensors, options.dtype ?? 'float32');
  await writeFile(join(tmp, 'weights.json'), JSON.stringify(toTfjsManifest(weights, 'weights.bin')));

  if (options.optimizers) {
    const manifest: OptimizerManifest = {};
    const all: { name: string; shape: number[]; values: Float32Array }[] = [];
    for (const [opt, adam] of Object.entries(options.optimizers)) {
      const s = adam.state();
      const entries: { name: string; shape: number[]; values: Float32Array }[] = [];
      for (const kind of ['m', 'v'] as const)
        for (const [param, t] of s[kind])
          entries.push({ name: `${opt}/${kind}/${param}`, shape: t.shape, values: (await t.data()) as Float32Array });
      all.push(...entries);
      manifest[opt] = { step: s.step, lr: s.lr, tensors: [] };
    }
    const written = await writeTensors(join(tmp, 'optimizer.bin'), all, 'float32');
    for (const e of written) manifest[e.name.split('/')[0]].tensors.push(e);
    await writeFile(join(tmp, 'optimizer.json'), JSON.stringify(manifest));
  }

  const full: CheckpointMeta = {
    format: CHECKPOINT_FORMAT,
    version: 1,
    model: model.config,
    createdAt: new Date().toISOString(),
    ...meta,
  };
  await writeFile(join(tmp, 'checkpoint.json'), JSON.stringify(full, null, 2) + '\n');
  await moveInto(tmp, dir);
}

/** The files a checkpoint is made of: what a save replaces in its folder (everything else there stays). */
const CHECKPOINT_FILES = ['weights.json', 'weights.bin', 'optimizer.json', 'optimizer.bin', 'checkpoint.json'];

/**
 * Moves a checkpoint written whole in `staging` into `dir`, file by file, checkpoint.json last, and removes the
 * checkpoint files `staging` does not have (an inference export's optimizer state); other files in `dir` (a model
 * card, an evaluation, sample sheets) stay. Each file is replaced by a rename: never half-written; a process killed
 * between two renames leaves new weights beside the older checkpoint.json (a resume then starts from weights a few
 * steps ahead of its step count) where a swap of the whole folder could leave none.
 */
async function moveInto(staging: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const written = new Set(await readdir(staging));
  for (const file of CHECKPOINT_FILES)
    if (written.has(file)) await rename(join(staging, file), join(dir, file));
    else await rm(join(dir, file), { force: true });
  await rm(staging, { recursive: true, force: true });
}

/**
 * Loads a checkpoint; `forTraining` also builds D and the image encoder and returns optimizer states, and
 * `withEma` the moving-average G (equal to G where the checkpoint has none). For inference, G takes the
 * moving average's weights where the checkpoint has them: that is the generator a run serves.
 */
export async function loadCheckpoint(
  dir: string,
  forTraining = false,
  withEma = false,
): Promise<{
  model: Model;
  meta: CheckpointMeta;
  optimizers: Map<string, { step: number; lr: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }>;
}> {
  const meta = await readCheckpointMeta(dir);
  const entries = fromTfjsManifest(JSON.parse(await readFile(join(dir, 'weights.json'), 'utf8')));
  const values = await readTensors(join(dir, 'weights.bin'), entries);
  const model = buildModel(meta.model, 0, forTraining, withEma);
  const hasEma = [...values.keys()].some((k) => k.startsWith('ema/'));
  const source = (net: NetworkName): NetworkName =>
    net === 'generator' && hasEma && !forTraining ? 'ema' : net === 'ema' && !hasEma ? 'generator' : net;
  tf.tidy(() => {
    for (const [net, params] of networkParams(model)) {
      for (const [name, v] of params.all()) {
        const data = values.get(`${source(net)}/${name}`);
        if (!data) {
          if (forTraining && (net === 'discriminator' || net === 'image')) continue; // an inference export resumes with fresh ones
          throw new Error(`checkpoint ${dir} has no weights for ${net}/${name}`);
        }
        v.assign(tf.tensor(data, v.shape));
      }
    }
  });
  const optimizers = new Map<
    string,
    { step: number; lr: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }
  >();
  if (forTraining && (await stat(join(dir, 'optimizer.json')).catch(() => null))) {
    const manifest = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as OptimizerManifest;
    const all = await readTensors(
      join(dir, 'optimizer.bin'),
      Object.values(manifest).flatMap((o) => o.tensors),
    );
    for (const [opt, o] of Object.entries(manifest)) {
      const state = { step: o.step, lr: o.lr, m: new Map<string, Float32Array>(), v: new Map<string, Float32Array>() };
      for (const e of o.tensors) {
        const [, kind, ...param] = e.name.split('/');
        state[kind as 'm' | 'v'].set(param.join('/'), all.get(e.name)!);
      }
      optimizers.set(opt, state);
    }
  }
  return { model, meta, optimizers };
}

/** What an export can relabel: how the served model draws (ModelConfig). */
export type ServedRelabel = Partial<Pick<ModelConfig, 'noiseScale' | 'conditioningGain'>>;

/**
 * A training checkpoint as an inference checkpoint (phi, G, S; float16 unless float32; no D, no optimizer
 * state) in `out`, with `relabel`'s fields set. Its files are replaced one by one and everything else in `out` (a
 * model card, an evaluation, sample sheets) stays.
 */
export async function exportCheckpoint(
  from: string,
  out: string,
  dtype: StoredDtype = 'float16',
  relabel: ServedRelabel = {},
): Promise<void> {
  const { model, meta } = await loadCheckpoint(from, false);
  const set = Object.fromEntries(Object.entries(relabel).filter(([, v]) => v !== undefined));
  model.config = validateModelConfig({ ...model.config, ...set });
  try {
    await saveCheckpoint(
      out,
      model,
      { steps: meta.steps, wallSeconds: meta.wallSeconds, training: meta.training },
      { dtype, networks: INFERENCE_NETWORKS },
    );
  } finally {
    disposeModel(model);
  }
}
