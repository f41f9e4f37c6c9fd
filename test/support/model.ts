/** Tiny checkpoints of the real architecture, so service tests run in seconds on any backend. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/model/backend.ts';
import { saveCheckpoint } from '../../src/model/checkpoint.ts';
import { type ModelConfig, defaultModelConfig } from '../../src/model/config.ts';
import { buildModel, disposeModel } from '../../src/model/model.ts';
import { PAPER_TRAINING, type TrainOptions } from '../../src/train/trainer.ts';

export function tinyConfig(imageSize: 32 | 64 | 128 = 32): ModelConfig {
  return defaultModelConfig({
    imageSize,
    zDim: 8,
    embedDim: 16,
    projDim: 8,
    ngf: 4,
    ndf: 4,
    nef: 4,
    text: { alphabet: defaultModelConfig().text.alphabet, maxLength: 64, convChannels: [8, 8, 8], gruUnits: 8 },
  });
}

/**
 * A tiny training run of the data set in `data`, written to `out`: all stages, the paper's GAN-INT-CLS and
 * objective, batch 4, one thread and shard on wasm, silent; `overrides` change any of it.
 */
export function tinyRun(data: string, out: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    data,
    out,
    ...PAPER_TRAINING,
    stages: ['text', 'gan', 'style'],
    steps: { text: 2, gan: 2, style: 1 },
    batch: 4,
    sampleEvery: 1000,
    checkpointEvery: 1000,
    seed: 1,
    model: tinyConfig(32),
    threads: 1,
    shards: 1,
    backend: 'wasm',
    log: () => {},
    ...overrides,
  };
}

/** Writes an untrained tiny checkpoint to <tmp>/<name> and returns its folder (the model's name is `name`). */
export async function tinyModelDir(name = 'tiny'): Promise<string> {
  await initBackend('wasm');
  const dir = join(await mkdtemp(join(tmpdir(), 'ganvas-')), name);
  const model = buildModel(tinyConfig(), 1, false);
  await saveCheckpoint(dir, model, { steps: { text: 0, gan: 0, style: 0 } }, { dtype: 'float16' });
  disposeModel(model);
  return dir;
}
