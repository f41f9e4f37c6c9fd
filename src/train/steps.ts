/**
 * One function per training step, as in Algorithm 1: the DS-SJE step that pretrains phi, the
 * discriminator step, the generator step, and the style encoder step. Each computes its loss on one
 * batch (or one shard of it) and returns the gradients by parameter name without applying them, so that
 * shards computed on several threads can be summed first (shards.ts); `applyStep` applies one.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Adam } from '../model/adam.ts';
import {
  type AdversarialLoss,
  type Variant,
  attributeLoss,
  discriminatorLoss,
  dsSjeLoss,
  generatorLoss,
  modeSeekingLoss,
  styleLoss,
  textMatchLoss,
  usesInterpolation,
  usesWrongText,
} from '../model/losses.ts';
import { type Model, type NetworkName, servedGenerator } from '../model/model.ts';
import type { Generator } from '../model/networks.ts';

/** Weight of StackGAN's KL term in G's loss when conditioning is `augmented` (StackGAN's COEFF.KL). */
export const KL_WEIGHT = 2;

export interface GanBatch {
  real: tf.Tensor4D; // [B, S, S, 3] in [-1, 1]
  h: tf.Tensor2D; // phi(t) of each image's captions
  hWrong: tf.Tensor2D; // phi(t) of captions from another class, or (--hard-negatives) the image's own recoloured
  z: tf.Tensor2D;
  /** Interpolated captions (1/2 phi(t1) + 1/2 phi(t2)) and their noise, B/2 of them: GAN-INT only. */
  hInt: tf.Tensor2D | null;
  zInt: tf.Tensor2D | null;
  /** Second noise for the first B/2 captions: the mode-seeking term only (--diversity > 0). */
  zPair: tf.Tensor2D | null;
  /** Conditioning-augmentation noise [rows, projDim] for z, zInt and zPair's rows: `augmented` models only. */
  eps: tf.Tensor2D | null;
  epsInt: tf.Tensor2D | null;
  epsPair: tf.Tensor2D | null;
  /**
   * DiffAugment translations (--d-translate): per row (dy, dx) for the real image, then for the generated one
   * [B, 4]; and (dy, dx) for each interpolated caption's image [B/2, 2]. Null: D sees images as they are.
   */
  shift: tf.Tensor2D | null;
  shiftInt: tf.Tensor2D | null;
}

export interface TextBatch {
  images: tf.Tensor4D;
  ids: tf.Tensor2D;
  /** What each caption says of each attribute [B, A] (a class index, -1: not named; --text-attributes), or null. */
  labels: tf.Tensor2D | null;
}

export interface StyleBatch {
  z: tf.Tensor2D;
  h: tf.Tensor2D;
  /** The conditioning noise where the served model samples its conditioning (ModelConfig.conditioningNoise). */
  eps: tf.Tensor2D | null;
}

export interface StepOptions {
  variant: Variant;
  /** Weight of the mode-seeking term in G's loss (0: the paper's objective). */
  diversity: number;
  objective: AdversarialLoss;
  /** Weight of the caption-matching term in G's loss, scored by the frozen DS-SJE image encoder (0: off). */
  textMatch: number;
  /** Weight of the attribute term beside DS-SJE in the text stage (0: off, the paper's). */
  textAttributes: number;
}

export const STEP_KINDS = ['text', 'd', 'g', 'style'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export interface StepResult {
  loss: number;
  terms: Record<string, number>;
  grads: Map<string, tf.Tensor>;
}

/** The parameters each kind of step trains, by the names its optimizer uses. */
export function trainedParams(model: Model, kind: StepKind): Map<string, tf.Variable> {
  const prefixed = (...nets: [string, Map<string, tf.Variable>][]) =>
    new Map(nets.flatMap(([net, params]) => [...params].map(([n, v]) => [`${net}/${n}`, v] as const)));
  if (kind === 'text') return prefixed(['text', model.text.params.trainable], ['image', model.image!.params.trainable]);
  if (kind === 'd') return model.discriminator!.params.trainable;
  if (kind === 'g') return model.generator.params.trainable;
  return model.style.params.trainable;
}

/** The networks a step reads or changes (weights, or batch-norm statistics in a training-mode pass). */
export function touchedNetworks(model: Model, kind: StepKind): NetworkName[] {
  if (kind === 'text') return ['text', 'image'];
  if (kind === 'style') return ['style', model.ema ? 'ema' : 'generator'];
  return ['generator', 'discriminator'];
}

/**
 * More networks a step reads, in inference mode, whose weights the threads must have too: the frozen image encoder of
 * G's caption-matching term (trained, and sent to the threads, in the text stage: a run resumed after it sends it).
 */
export function readNetworks(kind: StepKind, o: StepOptions): NetworkName[] {
  return kind === 'g' && o.textMatch > 0 ? ['image'] : [];
}

/** Gradients of `loss` for `params`, by name; `loss` runs once. The caller owns the gradient tensors. */
export function gradients(
  params: Map<string, tf.Variable>,
  loss: () => tf.Scalar,
): { loss: number; grads: Map<string, tf.Tensor> } {
  const byVarName = new Map([...params].map(([n, v]) => [v.name, n]));
  const named = new Map<string, tf.Tensor>();
  let value = 0;
  tf.tidy(() => {
    const r = tf.variableGrads(loss, [...params.values()]);
    for (const [varName, g] of Object.entries(r.grads)) named.set(byVarName.get(varName)!, tf.keep(g));
    value = r.value.dataSync()[0];
  });
  return { loss: value, grads: named };
}

/** Applies one step's gradients with its optimizer and frees them. */
export function applyStep(opt: Adam, r: StepResult): void {
  opt.apply(r.grads);
  tf.dispose([...r.grads.values()]);
}

/** DS-SJE, plus `o.textAttributes` x the attribute term where the batch has labels. */
export function textGrads(model: Model, b: TextBatch, o: StepOptions): StepResult {
  const attributed = o.textAttributes > 0 && b.labels !== null;
  let sje = 0;
  let attributes = 0;
  const r = gradients(trainedParams(model, 'text'), () => {
    const h = model.text.forward(b.ids);
    const ranking = dsSjeLoss(model.image!.forward(b.images, true), h);
    if (!attributed) return ranking;
    // the two terms read apart only where there are two (the loss itself is read once, by `gradients`)
    const term = attributeLoss(h, b.labels!);
    sje = ranking.dataSync()[0];
    attributes = term.dataSync()[0];
    return tf.add(ranking, tf.mul(o.textAttributes, term));
  });
  if (!attributed) sje = r.loss;
  return { ...r, terms: o.textAttributes > 0 ? { sje, attributes } : { sje } };
}

/**
 * DiffAugment's translation (Zhao et al. 2020): image i moved by (dy, dx) = (shifts[2i], shifts[2i + 1])
 * pixels, zeros shifted in. Differentiable, so G learns through it: D sees every image, real and generated,
 * moved so, and cannot learn the 3,200 training images by heart.
 */
export function translate(x: tf.Tensor4D, shifts: ArrayLike<number>): tf.Tensor4D {
  const [rows, height, width, channels] = x.shape;
  // moved on the host: on wasm a per-image slice, or a product with shift matrices, costs 50-150 ms for 16
  // images of 64x64 with its gradient, this a millisecond; the gradient moves dy back (sign -1)
  const move = (data: Float32Array, sign: number): Float32Array => {
    const out = new Float32Array(data.length);
    for (let i = 0; i < rows; i++) {
      const [dy, dx] = [sign * shifts[2 * i], sign * shifts[2 * i + 1]];
      const [x0, x1] = [Math.max(0, dx), Math.min(width, width + dx)]; // columns written in each row
      if (x1 <= x0) continue;
      for (let y = Math.max(0, dy); y < Math.min(height, height + dy); y++) {
        const src = ((i * height + y - dy) * width + x0 - dx) * channels;
        out.set(data.subarray(src, src + (x1 - x0) * channels), ((i * height + y) * width + x0) * channels);
      }
    }
    return out;
  };
  const moved = tf.customGrad((...inputs) => ({
    value: tf.tensor4d(move((inputs[0] as tf.Tensor).dataSync() as Float32Array, 1), x.shape),
    gradFunc: (dy: tf.Tensor) => tf.tensor4d(move(dy.dataSync() as Float32Array, -1), x.shape),
  }));
  return moved(x) as tf.Tensor4D;
}

/** Columns [col, col + 2) of each row of a [rows, width] shift table: the (dy, dx) pairs `translate` takes. */
function shiftPairs(t: tf.Tensor2D, col: number): Int32Array {
  const [rows, width] = t.shape;
  const data = t.dataSync();
  return Int32Array.from({ length: 2 * rows }, (_, k) => data[Math.floor(k / 2) * width + col + (k % 2)]);
}

/** D's gradients: BCE (or hinge) on real/right (1), real/wrong (1/2) and fake/right (1/2) for the CLS variants. */
export function discriminatorGrads(model: Model, b: GanBatch, o: StepOptions): StepResult {
  const D = model.discriminator!;
  const fake = tf.tidy(() => model.generator.forward(b.z, b.h, true, b.eps ?? undefined));
  const terms = { dReal: 0, dWrong: 0, dFake: 0 };
  const seen = (x: tf.Tensor4D, col: number) => (b.shift ? translate(x, shiftPairs(b.shift, col)) : x);
  const r = gradients(trainedParams(model, 'd'), () => {
    // one pass of the image half over the real images serves right and wrong text (D is never used in
    // inference mode, so its body's running statistics moving once instead of twice changes nothing)
    const real = D.features(seen(b.real, 0), true);
    const sReal = D.score(real, b.h, true);
    const sWrong = usesWrongText(o.variant) ? D.score(real, b.hWrong, true) : null;
    const sFake = D.forward(seen(fake, 2), b.h, true);
    const { total, terms: t } = discriminatorLoss(sReal, sWrong, sFake, o.objective);
    terms.dReal = t.real.dataSync()[0];
    terms.dWrong = t.wrong ? t.wrong.dataSync()[0] : 0;
    terms.dFake = t.fake.dataSync()[0];
    return total;
  });
  fake.dispose();
  return { ...r, terms: { d: r.loss, ...terms } };
}

/**
 * G's gradients: non-saturating (or hinge) loss on fakes, plus on interpolated captions for the INT
 * variants, plus `diversity` x the mode-seeking term when the batch has a second noise (zPair), plus the
 * conditioning augmentation's KL term for `augmented` models, plus `textMatch` x the caption-matching term on the
 * matching captions' images (the image encoder in inference mode: it is not trained here).
 */
export function generatorGrads(model: Model, b: GanBatch, o: StepOptions): StepResult {
  const D = model.discriminator!;
  const G = model.generator;
  const interpolate = usesInterpolation(o.variant) && b.hInt !== null && b.zInt !== null;
  const pair = o.diversity > 0 && b.zPair !== null ? b.zPair : null;
  const terms = { gInt: 0, ms: 0, kl: 0, match: 0 };
  const r = gradients(trainedParams(model, 'g'), () => {
    const n = b.z.shape[0];
    // one G pass over the matching captions, the interpolated ones and the paired noise together;
    // one D pass over the first two
    const z = tf.concat([b.z, ...(interpolate ? [b.zInt!] : []), ...(pair ? [pair] : [])]);
    const h = tf.concat([b.h, ...(interpolate ? [b.hInt!] : [])]);
    const m = pair ? pair.shape[0] : 0;
    const eps = b.eps
      ? tf.concat([b.eps, ...(interpolate ? [b.epsInt!] : []), ...(pair ? [b.epsPair!] : [])])
      : undefined;
    const images = G.forward(z, pair ? tf.concat([h, b.h.slice(0, m)]) : h, true, eps);
    const drawn = pair ? images.slice(0, h.shape[0]) : images;
    const scores = D.forward(b.shift ? translate(drawn, generatedShifts(b, interpolate)) : drawn, h, true);
    const loss = generatorLoss(scores.slice(0, n), interpolate ? scores.slice(n) : null, o.objective);
    terms.gInt = loss.interpolated ? loss.interpolated.dataSync()[0] : 0;
    let total: tf.Scalar = loss.total;
    if (model.config.conditioning === 'augmented') {
      const kl = G.conditioningKl(h);
      terms.kl = kl.dataSync()[0];
      total = tf.add(total, tf.mul(KL_WEIGHT, kl));
    }
    if (o.textMatch > 0) {
      const match = textMatchLoss(model.image!.forward(images.slice(0, n), false), b.h);
      terms.match = match.dataSync()[0];
      total = tf.add(total, tf.mul(o.textMatch, match));
    }
    if (!pair) return total;
    const seeking = modeSeekingLoss(images.slice(0, m), images.slice(h.shape[0]), b.z.slice(0, m), pair);
    terms.ms = seeking.dataSync()[0];
    return tf.add(total, tf.mul(o.diversity, seeking));
  });
  return { ...r, terms: { g: r.loss, ...terms } };
}

/** The (dy, dx) pairs of G's images in its step: the batch's generated ones, then the interpolated captions'. */
function generatedShifts(b: GanBatch, interpolate: boolean): Int32Array {
  const own = shiftPairs(b.shift!, 2);
  if (!interpolate) return own;
  const int = shiftPairs(b.shiftInt!, 0);
  const all = new Int32Array(own.length + int.length);
  all.set(own);
  all.set(int, own.length);
  return all;
}

/** S learns to invert the frozen (served) G: L_style = ||z - S(G(z, h))||^2. */
export function styleGrads(model: Model, b: StyleBatch): StepResult {
  const images = tf.tidy(() => servedGenerator(model).forward(b.z, b.h, false, b.eps ?? undefined));
  const r = gradients(trainedParams(model, 'style'), () => styleLoss(b.z, model.style.forward(images, true)));
  images.dispose();
  return { ...r, terms: { style: r.loss } };
}

/**
 * EMA of G's weights (Karras et al. 2018; Yazici et al. 2019): ema = d ema + (1 - d) G for parameters,
 * with d = min(decay, (1 + step) / (10 + step)) so the early average is not dominated by the random
 * initialisation; batch-norm statistics and conditioning constants are copied.
 */
export function updateEma(model: Model, decay: number, step: number): void {
  const ema = model.ema!;
  const d = Math.min(decay, (1 + step) / (10 + step));
  tf.tidy(() => {
    for (const [name, v] of model.generator.params.trainable) {
      const e = ema.params.trainable.get(name)!;
      e.assign(tf.add(tf.mul(e, d), tf.mul(v, 1 - d)));
    }
    for (const [name, v] of model.generator.params.stats) ema.params.stats.get(name)!.assign(v);
  });
}

/**
 * Standing statistics (Brock et al. 2019, BigGAN, appendix C): G's batch-norm running statistics become
 * the mean of its batch statistics over `passes` batches drawn as the service draws (one caption's phi, the
 * conditioning as served: mu, or sampled around it at the model's conditioningNoise). During training they follow
 * the last few batches of the *trained* G, drawn with augmentation noise, mean embeddings of 4 captions and
 * interpolated captions, and the moving
 * average of the weights copies them although its weights make other activations: on the shipped model its
 * flowers came out larger and on darker backgrounds than the real ones (docs/training.md).
 */
export function standingStats(g: Generator, passes: number, batch: () => StyleBatch): void {
  const training = g.params.statsMomentum;
  try {
    for (let k = 1; k <= passes; k++) {
      g.params.statsMomentum = 1 / k;
      tf.tidy(() => {
        const b = batch();
        g.forward(b.z, b.h, true, b.eps ?? undefined);
      });
    }
  } finally {
    g.params.statsMomentum = training;
  }
}
