/**
 * What a checkpoint folder says about itself (checkpoint.json), read without TensorFlow.js: the API lists
 * models from it, and processes that never run a model must not load the model runtime.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type ModelConfig, validateModelConfig } from './config.ts';

export const CHECKPOINT_FORMAT = 'ganvas-checkpoint';

export interface StageSteps {
  text: number;
  gan: number;
  style: number;
}

export interface CheckpointMeta {
  format: typeof CHECKPOINT_FORMAT;
  version: 1;
  model: ModelConfig;
  steps: StageSteps;
  /** Seconds spent training each stage, over every run that led to this checkpoint. */
  wallSeconds?: StageSteps;
  /** The training options the model was trained with (free-form JSON written by the trainer). */
  training?: Record<string, unknown>;
  /** The trainer's Rng state, so a resumed run draws the same batches it would have. */
  rng?: { state: number; spare: number | null };
  createdAt: string;
}

/** A model whose generator has never been trained: it proves the plumbing, not image quality. */
export const isUntrained = (meta: CheckpointMeta): boolean => meta.steps.gan === 0;

export async function readCheckpointMeta(dir: string): Promise<CheckpointMeta> {
  const path = join(dir, 'checkpoint.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // a training run's folder holds its checkpoint one level down
    const inRun = await readFile(join(dir, 'checkpoint', 'checkpoint.json')).then(
      () => true,
      () => false,
    );
    throw new Error(
      inRun
        ? `no checkpoint at ${dir}: it is a training run, its checkpoint is ${join(dir, 'checkpoint')}`
        : `no checkpoint at ${dir} (missing ${path}); create one with "npm run model:init -- --out ${dir}" or train one`,
    );
  }
  const meta = JSON.parse(text) as CheckpointMeta;
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${path} is not a ganvas checkpoint`);
  validateModelConfig(meta.model);
  return meta;
}

/** What the model catalog holds of a checkpoint (src/generations/models.ts). */
export interface ModelEntry {
  name: string;
  imageSize: number;
  variant: string;
  untrained: boolean;
  trainingSteps: number;
  summary: string;
  /** How many characters of a caption its text encoder reads. */
  captionCharacters: number;
}

/** The first paragraph of a model card after its title, on one line ("" without a card). */
async function cardSummary(dir: string): Promise<string> {
  const card = await readFile(join(dir, 'MODEL_CARD.md'), 'utf8').catch(() => '');
  const paragraph = card.split(/\n\s*\n/).find((p) => p.trim() && !p.trim().startsWith('#')) ?? '';
  // plain text (clients show it as it is): Markdown's code marks, emphasis and links give their words
  return paragraph
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** A checkpoint folder's catalog entry; its folder name is the model's name. */
export async function modelEntry(dir: string, meta?: CheckpointMeta): Promise<ModelEntry> {
  const m = meta ?? (await readCheckpointMeta(dir));
  return {
    name: basename(dir),
    imageSize: m.model.imageSize,
    variant: String(m.training?.variant ?? 'gan-int-cls'),
    untrained: isUntrained(m),
    trainingSteps: m.steps.gan,
    summary: await cardSummary(dir),
    captionCharacters: m.model.text.maxLength,
  };
}
