/**
 * The evaluation's attribute classifier: a conv net trained on real images of the data set that predicts
 * every captioned attribute; its 128-d penultimate features are the space of the Fréchet distance. A classifier
 * can be pinned (kept in files with a fingerprint of what it was trained on), so that evaluations made by other
 * code, on other days, measure with the same one: training it again gives another classifier whenever the
 * arithmetic moves by a rounding, and the figures move with it.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import type { Species } from '../data/flowers.ts';
import { Progress } from '../cli/progress.ts';
import { Adam } from '../model/adam.ts';
import { type ModelConfig, defaultModelConfig } from '../model/config.ts';
import { ParamStore, dense } from '../model/layers.ts';
import { imageToVector } from '../model/networks.ts';
import { Rng } from '../model/random.ts';
import { type TensorEntry, readTensors, writeTensors } from '../model/tensor-file.ts';
import type { TrainingSet } from '../train/data.ts';
import { ATTRIBUTES, ATTRIBUTE_NAMES, type Attribute, labelsOf } from './attributes.ts';

export const FEATURE_DIM = 128;

/**
 * What a classifier trained on `indices` of `set` for `steps` steps depends on: the images (their pixels as
 * loaded), their classes and those classes' labels (`species`, species.json's text), the indices in order, the
 * image size and the steps.
 */
export function classifierFingerprint(set: TrainingSet, species: string, indices: number[], steps: number): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ size: set.imageSize, loadSize: set.loadSize, steps, features: FEATURE_DIM, indices }));
  h.update(species);
  set.samples.forEach((s, i) => {
    h.update(s.classId);
    h.update(set.images[i]);
  });
  return h.digest('hex');
}

interface PinnedFile {
  fingerprint: string;
  weights: TensorEntry[];
}

export class AttributeClassifier {
  private readonly body;
  private readonly heads: Record<Attribute, (x: tf.Tensor2D) => tf.Tensor2D>;
  private readonly params: Map<string, tf.Variable>;

  /** Every variable, the body's batch-norm statistics too: what a pinned classifier keeps. */
  private readonly variables: Map<string, tf.Variable>;

  constructor(imageSize: ModelConfig['imageSize'], seed = 11) {
    const rng = new Rng(seed);
    this.body = imageToVector(defaultModelConfig({ imageSize, nef: 16 }), rng, FEATURE_DIM);
    const p = new ParamStore(rng);
    this.heads = Object.fromEntries(
      ATTRIBUTE_NAMES.map((a) => [a, dense(p, a, FEATURE_DIM, ATTRIBUTES[a].length)]),
    ) as Record<Attribute, (x: tf.Tensor2D) => tf.Tensor2D>;
    this.params = new Map([
      ...[...this.body.params.trainable].map(([k, v]) => [`body/${k}`, v] as const),
      ...p.trainable,
    ]);
    this.variables = new Map([...[...this.body.params.all()].map(([k, v]) => [`body/${k}`, v] as const), ...p.all()]);
  }

  /**
   * Keeps this classifier in `<base>.json` (the fingerprint, the manifest) and `<base>.bin` (float16), then reads
   * it back, so the run that pins it measures with what later runs load.
   */
  async pin(base: string, fingerprint: string): Promise<void> {
    const weights = await writeTensors(
      `${base}.bin`,
      [...this.variables].map(([name, v]) => ({ name, shape: v.shape, values: v.dataSync() as Float32Array })),
      'float16',
    );
    await writeFile(`${base}.json`, `${JSON.stringify({ fingerprint, weights } satisfies PinnedFile, null, 1)}\n`);
    if (!(await this.loadPinned(base, fingerprint))) throw new Error(`${base}: could not read back what was pinned`);
  }

  /** Takes the weights pinned at `base` if they were trained on what `fingerprint` names; false if not, or none. */
  async loadPinned(base: string, fingerprint: string): Promise<boolean> {
    let file: PinnedFile;
    try {
      file = JSON.parse(await readFile(`${base}.json`, 'utf8')) as PinnedFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if (file.fingerprint !== fingerprint) return false;
    const values = await readTensors(`${base}.bin`, file.weights);
    for (const [name, v] of this.variables) {
      const value = values.get(name);
      if (!value || value.length !== v.size) throw new Error(`${base}: no ${name} of shape ${v.shape}`);
      tf.tidy(() => v.assign(tf.tensor(value, v.shape)));
    }
    return true;
  }

  /** [B, S, S, 3] in [-1, 1] -> features [B, 128]. */
  features(x: tf.Tensor4D, training = false): tf.Tensor2D {
    return tf.relu(this.body.forward(x, training));
  }

  /** The predicted class index of every attribute for each image. */
  predict(x: tf.Tensor4D): { features: Float32Array[]; labels: Record<Attribute, number>[] } {
    return tf.tidy(() => {
      const f = this.features(x);
      const preds = Object.fromEntries(
        ATTRIBUTE_NAMES.map((a) => [a, tf.argMax(this.heads[a](f), 1).dataSync()]),
      ) as Record<Attribute, Int32Array>;
      const n = x.shape[0];
      const fd = f.dataSync() as Float32Array;
      return {
        features: Array.from({ length: n }, (_, i) => fd.slice(i * FEATURE_DIM, (i + 1) * FEATURE_DIM)),
        labels: Array.from(
          { length: n },
          (_, i) => Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, preds[a][i]])) as Record<Attribute, number>,
        ),
      };
    });
  }

  /** Trains on the images `indices` of `set` with labels from their species. */
  train(set: TrainingSet, indices: number[], species: Map<string, Species>, steps: number, batch = 64): void {
    const rng = new Rng(5);
    const opt = new Adam(this.params, 1e-3, 0.9);
    const labels = indices.map((i) => labelsOf(species.get(set.samples[i].classId)!));
    const progress = new Progress('attribute classifier', steps);
    for (let step = 1; step <= steps; step++) {
      const pick = Array.from({ length: batch }, () => rng.int(indices.length));
      const crops = set.augmented(
        pick.map((k) => indices[k]),
        rng,
      );
      const x = tf.tensor4d(crops.data, crops.shape as [number, number, number, number]);
      const loss = opt.minimize(() => {
        const f = this.features(x, true);
        const terms = ATTRIBUTE_NAMES.map((a) => {
          const y = tf.oneHot(
            tf.tensor1d(
              pick.map((k) => labels[k][a]),
              'int32',
            ),
            ATTRIBUTES[a].length,
          );
          return tf.mean(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(this.heads[a](f))), 1)));
        });
        return tf.addN(terms) as tf.Scalar;
      });
      x.dispose();
      progress.update(step, `loss ${loss.toFixed(3)}`);
    }
    opt.dispose();
  }
}
