/**
 * The evaluation's attribute classifier: a conv net trained on real images of the data set that predicts
 * every captioned attribute; its 128-d penultimate features are the space of the Fréchet distance. A classifier
 * can be pinned (kept in files with a fingerprint of what it was trained on), so that evaluations made by other
 * code, on other days, measure with the same one: training it again gives another classifier whenever the
 * arithmetic moves by a rounding, and the figures move with it.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Species } from '../data/flowers.ts';
import { messageOf } from '../errors.ts';
import { Progress } from '../cli/progress.ts';
import { Adam } from '../model/adam.ts';
import { type ModelConfig, defaultModelConfig } from '../model/config.ts';
import { ParamStore, dense } from '../model/layers.ts';
import { imageToVector } from '../model/networks.ts';
import { Rng } from '../model/random.ts';
import { type TensorEntry, decodeTensors, encodeTensors } from '../model/tensor-file.ts';
import type { TrainingSet } from '../train/data.ts';
import { ATTRIBUTES, ATTRIBUTE_NAMES, type Attribute, labelsOf } from '../data/attributes.ts';

export const FEATURE_DIM = 128;

/** How the classifier trains (part of its fingerprint). */
const TRAINING = { seed: 5, batch: 64, lr: 1e-3, beta1: 0.9 } as const;

interface PinnedFile {
  fingerprint: string;
  /** sha256 of the .bin: a .json beside another run's .bin is not taken. */
  bin: string;
  weights: TensorEntry[];
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Writes `bytes` to `path` whole: to a file of its own first, then renamed over it. */
async function writeWhole(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

export class AttributeClassifier {
  private readonly body;
  private readonly heads: Record<Attribute, (x: tf.Tensor2D) => tf.Tensor2D>;
  private readonly params: Map<string, tf.Variable>;

  /** Every variable, the body's batch-norm statistics too: what a pinned classifier keeps. */
  private readonly variables: Map<string, tf.Variable>;

  constructor(
    imageSize: ModelConfig['imageSize'],
    private readonly seed = 11,
  ) {
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
   * What this classifier trained on `indices` of `set` for `steps` steps depends on: the images (their pixels as
   * loaded), their classes and those classes' labels (`species`, species.json's text), the indices in order, the
   * steps, and the classifier itself (its variables' names and shapes, its seed, how it trains, the attributes).
   */
  fingerprint(set: TrainingSet, species: string, indices: number[], steps: number): string {
    const h = createHash('sha256');
    h.update(
      JSON.stringify({
        size: set.imageSize,
        loadSize: set.loadSize,
        seed: this.seed,
        training: TRAINING,
        attributes: ATTRIBUTES,
        variables: [...this.variables].map(([name, v]) => [name, v.shape]),
        steps,
        indices,
      }),
    );
    h.update(species);
    set.samples.forEach((s, i) => {
      h.update(s.classId);
      h.update(set.images[i]);
    });
    return h.digest('hex');
  }

  /**
   * Keeps this classifier in `<base>.json` (the fingerprint, the manifest) and `<base>.bin` (float16), each written
   * whole, and takes the float16 weights itself, so the run that pins it measures with what later runs load.
   */
  async pin(base: string, fingerprint: string): Promise<void> {
    const { bytes, entries: weights } = encodeTensors(
      [...this.variables].map(([name, v]) => ({ name, shape: v.shape, values: v.dataSync() as Float32Array })),
      'float16',
    );
    await writeWhole(`${base}.bin`, bytes);
    const file: PinnedFile = { fingerprint, bin: sha256(bytes), weights };
    await writeWhole(`${base}.json`, `${JSON.stringify(file, null, 1)}\n`);
    this.assign(decodeTensors(bytes, weights, `${base}.bin`));
  }

  /**
   * Takes the weights pinned at `base` if they were trained on what `fingerprint` names: 'loaded'; 'absent' when
   * none is pinned there; 'other' when the pin is for other data or another classifier, or its files do not match.
   */
  async loadPinned(base: string, fingerprint: string): Promise<'loaded' | 'absent' | 'other'> {
    let file: PinnedFile;
    try {
      file = JSON.parse(await readFile(`${base}.json`, 'utf8')) as PinnedFile;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'absent' : 'other';
    }
    if (file.fingerprint !== fingerprint) return 'other';
    const bytes = await readFile(`${base}.bin`).catch(() => null);
    if (!bytes || sha256(bytes) !== file.bin) return 'other';
    const values = decodeTensors(bytes, file.weights, `${base}.bin`);
    if ([...this.variables].some(([name, v]) => values.get(name)?.length !== v.size)) return 'other';
    this.assign(values);
    return 'loaded';
  }

  private assign(values: Map<string, Float32Array>): void {
    tf.tidy(() => {
      for (const [name, v] of this.variables) v.assign(tf.tensor(values.get(name)!, v.shape));
    });
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
  train(set: TrainingSet, indices: number[], species: Map<string, Species>, steps: number): void {
    const { batch } = TRAINING;
    const rng = new Rng(TRAINING.seed);
    const opt = new Adam(this.params, TRAINING.lr, TRAINING.beta1);
    const labels = indices.map((i) => labelsOf(species.get(set.samples[i].classId)!));
    const progress = new Progress('attribute classifier', steps);
    for (let step = 1; step <= steps; step++) {
      const pick = Array.from({ length: batch }, () => rng.int(indices.length));
      const crops = set.augmented(
        pick.map((k) => indices[k]),
        rng,
        'random',
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

/**
 * The classifier that measures an evaluation, and which it is: the one pinned in `dir` (`classifier-<size>`) when
 * it was trained on these images, split and steps; else one trained on `indices`, pinned there when none is yet
 * (a pin for other data is reported and left as it is). Without `dir`, one trained for this run.
 */
export async function pinnedOrTrained(
  set: TrainingSet,
  species: Map<string, Species>,
  speciesText: string,
  indices: number[],
  steps: number,
  dir: string | undefined,
  log: (line: string) => void,
): Promise<{ classifier: AttributeClassifier; source: string }> {
  const classifier = new AttributeClassifier(set.imageSize as ModelConfig['imageSize']);
  const base = dir ? join(dir, `classifier-${set.imageSize}`) : null;
  const fingerprint = base ? classifier.fingerprint(set, speciesText, indices, steps) : '';
  const pinned = `pinned: ${base} (fingerprint ${fingerprint.slice(0, 12)})`;
  const found = base ? await classifier.loadPinned(base, fingerprint) : 'absent';
  let source = found === 'loaded' ? pinned : 'trained for this run';
  if (found !== 'loaded') {
    classifier.train(set, indices, species, steps);
    if (base && found === 'other')
      log(
        `attribute classifier: the one pinned at ${base} was trained on other data or is another classifier; this run's is not kept (delete that one to pin another)`,
      );
    else if (base)
      try {
        await mkdir(dir!, { recursive: true });
        await classifier.pin(base, fingerprint);
        source = pinned;
        log(`attribute classifier: pinned at ${base} for every later evaluation of this data set`);
      } catch (err) {
        log(`attribute classifier: could not pin it at ${base}: ${messageOf(err)}`);
      }
  }
  log(`attribute classifier: ${source}`);
  return { classifier, source };
}
