/**
 * Inference with a trained model, for the worker and the evaluation: caption embeddings phi(t), images
 * G(z, h) in eval mode (batch-independent, so batching requests together changes no pixel), and style
 * vectors S(x). Pixels cross this boundary as RGB bytes, row-major, size x size x 3.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadCheckpoint } from './checkpoint.ts';
import { type CheckpointMeta, isUntrained } from './checkpoint-meta.ts';
import { type ModelConfig, latentDim } from './config.ts';
import { type Model, disposeModel, servedGenerator } from './model.ts';
import { encodeCaption } from './networks.ts';

export class Synthesizer {
  private constructor(
    readonly model: Model,
    readonly meta: CheckpointMeta,
  ) {}

  static async load(dir: string): Promise<Synthesizer> {
    const { model, meta } = await loadCheckpoint(dir, false);
    return new Synthesizer(model, meta);
  }

  static fromModel(model: Model, meta: CheckpointMeta): Synthesizer {
    return new Synthesizer(model, meta);
  }

  get config(): ModelConfig {
    return this.model.config;
  }

  /** The captions' mean that G centres phi(t) by (conditioning `centred`, `augmented`): caption mixes keep to it. */
  get conditioningCentre(): Float32Array | undefined {
    return servedGenerator(this.model).params.stats.get('cond.mean')?.dataSync() as Float32Array | undefined;
  }

  get untrained(): boolean {
    return isUntrained(this.meta);
  }

  /** phi(t) for each caption. */
  embed(captions: string[]): Float32Array[] {
    const { alphabet, maxLength } = this.config.text;
    const ids = new Int32Array(captions.length * maxLength);
    captions.forEach((c, i) => ids.set(encodeCaption(c, alphabet, maxLength), i * maxLength));
    return tf.tidy(() => rows(this.model.text.forward(tf.tensor2d(ids, [captions.length, maxLength], 'int32'))));
  }

  /**
   * G(noiseScale x z, h) for each pair, as RGB bytes, h moved to where G reads it (servedConditioning). z is the
   * unit-normal noise of a seed (latentDim long: where the model samples its conditioning, its last projDim values
   * are the conditioning noise e, scaled by conditioningNoise) or S(x) (zDim long: the conditioning at its centre,
   * e = 0).
   */
  draw(items: { z: Float32Array; h: Float32Array }[]): Uint8Array[] {
    if (items.length === 0) return [];
    const { zDim, projDim, embedDim, imageSize, noiseScale, conditioningNoise } = this.config;
    const n = items.length;
    const noise = new Float32Array(n * zDim);
    const cond = conditioningNoise > 0 ? new Float32Array(n * projDim) : null;
    const latent = latentDim(this.config);
    items.forEach(({ z }, i) => {
      if (z.length !== zDim && z.length !== latent)
        throw new Error(`noise of length ${z.length}: this model takes ${zDim} or ${latent}`);
      for (let k = 0; k < zDim; k++) noise[i * zDim + k] = z[k] * noiseScale;
      if (cond && z.length > zDim)
        for (let k = 0; k < projDim; k++) cond[i * projDim + k] = z[zDim + k] * conditioningNoise;
    });
    const z = tf.tensor2d(noise, [n, zDim]);
    const e = cond ? tf.tensor2d(cond, [n, projDim]) : undefined;
    const gain = this.config.conditioningGain;
    const flat = concat(items.map((i) => i.h));
    // the centre is read (from G's statistics) only where the gain moves phi about it
    const h = tf.tensor2d(gain === 1 ? flat : servedConditioning(flat, this.conditioningCentre, gain), [n, embedDim]);
    const pixels = tf.tidy(() => {
      const x = servedGenerator(this.model).forward(z, h, false, e); // [B, S, S, 3] in [-1, 1]
      return tf.clipByValue(tf.round(tf.mul(tf.add(x, 1), 127.5)), 0, 255);
    });
    const data = pixels.dataSync();
    tf.dispose([z, h, pixels, ...(e ? [e] : [])]);
    const bytes = imageSize * imageSize * 3;
    return items.map((_, i) => Uint8Array.from(data.subarray(i * bytes, (i + 1) * bytes)));
  }

  /**
   * S(x) for RGB images of the model's size, in draw's units (S's output / noiseScale): draw(S(x), h) redraws x's
   * style, with the conditioning at its centre.
   */
  styleOf(images: Uint8Array[]): Float32Array[] {
    const { imageSize: s, noiseScale } = this.config;
    return tf.tidy(() => {
      const x = tf.tensor4d(concat(images), [images.length, s, s, 3]).div(127.5).sub(1) as tf.Tensor4D;
      return rows(tf.div(this.model.style.forward(x, false), noiseScale) as tf.Tensor2D);
    });
  }

  dispose(): void {
    disposeModel(this.model);
  }
}

/**
 * Caption embeddings (rows of one flat array) as the served G reads them: m + gain x (phi - m) about the captions'
 * mean m (ModelConfig.conditioningGain; a model without a mean has gain 1). Returns `h` itself at gain 1.
 */
export function servedConditioning(h: Float32Array, centre: Float32Array | undefined, gain: number): Float32Array {
  if (gain === 1 || !centre) return h;
  return h.map((v, k) => centre[k % centre.length] + gain * (v - centre[k % centre.length]));
}

function rows(t: tf.Tensor2D): Float32Array[] {
  const [n, d] = t.shape;
  const data = t.dataSync() as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

function concat(parts: (Float32Array | Uint8Array)[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
