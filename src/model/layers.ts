/**
 * Parameters and the few layers ganvas's networks are made of. A network is a ParamStore (its named
 * variables) plus a forward function closing over them; names are stable, so checkpoints map by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from './random.ts';

const BN_MOMENTUM = 0.1;
const BN_EPSILON = 1e-5;

/** The weights of one network: trainable parameters and batch-norm running statistics. */
export class ParamStore {
  readonly trainable = new Map<string, tf.Variable>();
  readonly stats = new Map<string, tf.Variable>();
  /**
   * How far one training-mode pass moves the batch-norm running statistics: 0.1 while training;
   * `standingStats` sets 1/k on its k-th pass, so they become the plain mean over its passes.
   */
  statsMomentum = BN_MOMENTUM;

  constructor(private readonly rng: Rng) {}

  private add(name: string, value: tf.Tensor, trainable: boolean): tf.Variable {
    if (this.trainable.has(name) || this.stats.has(name)) throw new Error(`duplicate parameter ${name}`);
    const v = tf.variable(value, trainable);
    value.dispose();
    (trainable ? this.trainable : this.stats).set(name, v);
    return v;
  }

  /** N(mean, std) from the store's seeded Rng: the paper's N(0, 0.02) init, the same on every backend. */
  normal(name: string, shape: number[], mean = 0, std = 0.02): tf.Variable {
    return this.add(
      name,
      tf.tensor(
        this.rng.normals(
          shape.reduce((a, b) => a * b, 1),
          mean,
          std,
        ),
        shape,
      ),
      true,
    );
  }

  constant(name: string, shape: number[], value: number, trainable = true): tf.Variable {
    return this.add(name, tf.fill(shape, value), trainable);
  }

  /** Every variable by name, trainable and statistics alike (what a checkpoint stores). */
  all(): Map<string, tf.Variable> {
    return new Map([...this.trainable, ...this.stats]);
  }

  dispose(): void {
    for (const v of this.all().values()) v.dispose();
  }
}

export type Layer<I extends tf.Tensor = tf.Tensor, O extends tf.Tensor = tf.Tensor> = (x: I) => O;

export function dense(
  p: ParamStore,
  name: string,
  inF: number,
  outF: number,
  bias = true,
): Layer<tf.Tensor2D, tf.Tensor2D> {
  const w = p.normal(`${name}.w`, [inF, outF]);
  const b = bias ? p.constant(`${name}.b`, [outF], 0) : null;
  return (x) => (b ? tf.add(tf.matMul(x, w), b) : tf.matMul(x, w));
}

export function conv(
  p: ParamStore,
  name: string,
  k: number | [number, number],
  inC: number,
  outC: number,
  stride: number,
  pad: 'same' | 'valid',
  bias = false,
): Layer<tf.Tensor4D, tf.Tensor4D> {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  const w = p.normal(`${name}.w`, [kh, kw, inC, outC]);
  const b = bias ? p.constant(`${name}.b`, [outC], 0) : null;
  return (x) => {
    const y = tf.conv2d(x, w as tf.Tensor4D, stride, pad);
    return b ? tf.add(y, b) : y;
  };
}

/** Kernel-4, stride-2 transposed convolution: [B, H, W, inC] -> [B, 2H, 2W, outC]. */
export function upConv(p: ParamStore, name: string, inC: number, outC: number): Layer<tf.Tensor4D, tf.Tensor4D> {
  const w = p.normal(`${name}.w`, [4, 4, outC, inC]);
  return (x) => {
    const [b, h, wd] = x.shape;
    return tf.conv2dTranspose(x, w as tf.Tensor4D, [b, 2 * h, 2 * wd, outC], 2, 'same');
  };
}

/**
 * Resize then convolve (Odena et al., Distill 2016): nearest-neighbour 2x, then a 3x3 stride-1 'same'
 * convolution with weights [3, 3, inC, outC]. Computed as the transposed convolution it equals, so it
 * costs what the paper's upsampling costs: along each axis, output 2m reads inputs m-1, m with taps
 * (w0, w1 + w2) and output 2m+1 reads m, m+1 with (w0 + w1, w2), which is a 4-tap transposed kernel
 * [w2, w1 + w2, w0 + w1, w0]. Every output phase sums the same nine taps, so a flat input gives a flat
 * output: no checkerboard, whatever the weights.
 */
export function resizeConv(p: ParamStore, name: string, inC: number, outC: number): Layer<tf.Tensor4D, tf.Tensor4D> {
  const w = p.normal(`${name}.w`, [3, 3, inC, outC]);
  const taps = (t: tf.Tensor, axis: number) => {
    const [w0, w1, w2] = tf.split(t, 3, axis);
    return tf.concat([w2, tf.add(w1, w2), tf.add(w0, w1), w0], axis);
  };
  return (x) => {
    const [b, h, wd] = x.shape;
    const k = tf.transpose(taps(taps(w, 0), 1), [0, 1, 3, 2]) as tf.Tensor4D; // [4, 4, outC, inC]
    return tf.conv2dTranspose(x, k, [b, 2 * h, 2 * wd, outC], 2, 'same');
  };
}

export type BatchNorm = <T extends tf.Tensor>(x: T, training: boolean) => T;

/**
 * Batch norm over every axis but the last. Training uses the batch's statistics and moves the running
 * averages; inference uses the running averages, so an image does not depend on what it is batched with.
 */
export function batchNorm(p: ParamStore, name: string, channels: number): BatchNorm {
  const gamma = p.normal(`${name}.gamma`, [channels], 1, 0.02);
  const beta = p.constant(`${name}.beta`, [channels], 0);
  const runMean = p.constant(`${name}.mean`, [channels], 0, false);
  const runVar = p.constant(`${name}.var`, [channels], 1, false);
  return <T extends tf.Tensor>(x: T, training: boolean): T => {
    if (!training) return tf.batchNorm(x, runMean, runVar, beta, gamma, BN_EPSILON) as T;
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const { mean, variance } = tf.moments(x, axes);
    const m = p.statsMomentum;
    tf.tidy(() => {
      runMean.assign(tf.add(tf.mul(runMean, 1 - m), tf.mul(mean, m)));
      runVar.assign(tf.add(tf.mul(runVar, 1 - m), tf.mul(variance, m)));
    });
    return tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, BN_EPSILON))), gamma).add(beta) as T;
  };
}

export const leaky = <T extends tf.Tensor>(x: T): T => tf.leakyRelu(x, 0.2);
