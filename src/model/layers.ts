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

  /** Tensors computed from variables (`derived`), with the variables' values they were computed from. */
  private readonly derivedCache = new Map<string, { from: object[]; value: Record<string, tf.Tensor> }>();

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

  /**
   * `make()`, computed once per set of values of `from` and kept: made again (the old tensors disposed) once one
   * of them is assigned. For inference only: what it returns is not differentiated back to `from`.
   */
  derived<T extends Record<string, tf.Tensor>>(name: string, from: tf.Variable[], make: () => T): T {
    const ids = from.map((v) => v.dataId);
    const hit = this.derivedCache.get(name);
    if (hit && hit.from.length === ids.length && hit.from.every((id, i) => id === ids[i])) return hit.value as T;
    if (hit) tf.dispose(Object.values(hit.value));
    const value = tf.tidy(make);
    for (const t of Object.values(value)) tf.keep(t); // an enclosing tf.tidy must not dispose them
    this.derivedCache.set(name, { from: ids, value });
    return value;
  }

  dispose(): void {
    for (const v of this.all().values()) v.dispose();
    for (const { value } of this.derivedCache.values()) tf.dispose(Object.values(value));
    this.derivedCache.clear();
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

/**
 * The 1x1 convolution of [x ; t copied to every position of x's grid], [B, H, W, inC] and [B, textC] ->
 * [B, H, W, outC], without making the copies: x's channels go through their part of the kernel as a
 * convolution, t through the rest once per row, added across the grid. The same weights (one [1, 1, inC + textC,
 * outC] kernel) and the same result as concatenating; on wasm the copy (Tile) and its gradient (a slice and an add
 * per position) took about 5% of a training step at config (c).
 */
export function gridConv(
  p: ParamStore,
  name: string,
  inC: number,
  textC: number,
  outC: number,
): (x: tf.Tensor4D, t: tf.Tensor2D) => tf.Tensor4D {
  const w = p.normal(`${name}.w`, [1, 1, inC + textC, outC]);
  return (x, t) => {
    const [wx, wt] = tf.split(w, [inC, textC], 2);
    const perRow = tf.matMul(t, wt.reshape([textC, outC])).reshape([t.shape[0], 1, 1, outC]);
    return tf.add(tf.conv2d(x, wx as tf.Tensor4D, 1, 'valid'), perRow);
  };
}

/**
 * A 2x upsampling layer, [B, H, W, inC] -> [B, 2H, 2W, outC], computed as a kernel-4 stride-2 transposed
 * convolution. Given `inference`, it runs as the served G does: its kernel, with the eval-mode batch norm that
 * follows folded in (filter scaled per output channel, plus a shift), is made once per set of weights
 * (ParamStore.derived) instead of on every call. Training (and its gradients) never takes that path.
 */
export type UpLayer = (x: tf.Tensor4D, inference?: { bn: BatchNorm | null }) => tf.Tensor4D;

function upLayer(p: ParamStore, name: string, w: tf.Variable, kernel: () => tf.Tensor4D): UpLayer {
  const transposed = (x: tf.Tensor4D, k: tf.Tensor4D) => {
    const [b, h, wd] = x.shape;
    return tf.conv2dTranspose(x, k, [b, 2 * h, 2 * wd, k.shape[2]], 2, 'same');
  };
  return (x, inference) => {
    if (!inference) return transposed(x, kernel());
    const bn = inference.bn;
    const made = p.derived(name, bn ? [w, ...bn.variables] : [w], (): Record<string, tf.Tensor> => {
      const k = kernel(); // [4, 4, outC, inC]
      if (!bn) return { k };
      const { scale, shift } = bn.affine();
      return { k: tf.mul(k, tf.reshape(scale, [1, 1, -1, 1])), shift };
    });
    const y = transposed(x, made.k as tf.Tensor4D);
    return made.shift ? tf.add(y, made.shift) : y;
  };
}

/** Kernel-4, stride-2 transposed convolution: [B, H, W, inC] -> [B, 2H, 2W, outC]. */
export function upConv(p: ParamStore, name: string, inC: number, outC: number): UpLayer {
  const w = p.normal(`${name}.w`, [4, 4, outC, inC]);
  return upLayer(p, name, w, () => w as tf.Tensor4D);
}

/**
 * Resize then convolve (Odena et al., Distill 2016): nearest-neighbour 2x, then a 3x3 stride-1 'same'
 * convolution with weights [3, 3, inC, outC]. Computed as the transposed convolution it equals, so it
 * costs what the paper's upsampling costs: along each axis, output 2m reads inputs m-1, m with taps
 * (w0, w1 + w2) and output 2m+1 reads m, m+1 with (w0 + w1, w2), which is a 4-tap transposed kernel
 * [w2, w1 + w2, w0 + w1, w0]. Every output phase sums the same nine taps, so a flat input gives a flat
 * output: no checkerboard, whatever the weights.
 */
export function resizeConv(p: ParamStore, name: string, inC: number, outC: number): UpLayer {
  const w = p.normal(`${name}.w`, [3, 3, inC, outC]);
  const taps = (t: tf.Tensor, axis: number) => {
    const [w0, w1, w2] = tf.split(t, 3, axis);
    return tf.concat([w2, tf.add(w1, w2), tf.add(w0, w1), w0], axis);
  };
  return upLayer(p, name, w, () => tf.transpose(taps(taps(w, 0), 1), [0, 1, 3, 2]) as tf.Tensor4D); // [4, 4, outC, inC]
}

export interface BatchNorm {
  <T extends tf.Tensor>(x: T, training: boolean): T;
  /** Eval mode as x * scale + shift per channel, from the running statistics. */
  affine(): { scale: tf.Tensor1D; shift: tf.Tensor1D };
  /** Everything `affine` reads. */
  variables: tf.Variable[];
}

/**
 * Batch norm over every axis but the last. Training uses the batch's statistics and moves the running
 * averages; inference uses the running averages, so an image does not depend on what it is batched with.
 */
export function batchNorm(p: ParamStore, name: string, channels: number): BatchNorm {
  const gamma = p.normal(`${name}.gamma`, [channels], 1, 0.02);
  const beta = p.constant(`${name}.beta`, [channels], 0);
  const runMean = p.constant(`${name}.mean`, [channels], 0, false);
  const runVar = p.constant(`${name}.var`, [channels], 1, false);
  const affine = () => {
    const scale = tf.div(gamma, tf.sqrt(tf.add(runVar, BN_EPSILON))) as tf.Tensor1D;
    return { scale, shift: tf.sub(beta, tf.mul(runMean, scale)) as tf.Tensor1D };
  };
  const norm = <T extends tf.Tensor>(x: T, training: boolean): T => {
    if (!training) return tf.batchNorm(x, runMean, runVar, beta, gamma, BN_EPSILON) as T;
    const normalised = trainingBatchNorm((mean, variance) =>
      tf.tidy(() => {
        const m = p.statsMomentum;
        runMean.assign(tf.add(tf.mul(runMean, 1 - m), tf.mul(mean, m)));
        runVar.assign(tf.add(tf.mul(runVar, 1 - m), tf.mul(variance, m)));
      }),
    );
    return normalised(x, gamma, beta) as T;
  };
  return Object.assign(norm, { affine, variables: [gamma, beta, runMean, runVar] });
}

/**
 * Whether tfjs's wasm backend runs the ops: some of its kernels are scalar loops where XNNPACK has a fast
 * operator for the same arithmetic (docs/benchmarks.md, session 14), so `channelSum`, `leaky` and `tanh` take those
 * operators there; other backends keep their native kernels.
 */
const onWasm = (): boolean => tf.getBackend() === 'wasm';

/**
 * Sum over every axis but the last, [..., C] -> [C]. On wasm, for images: each image's mean over its grid
 * (XNNPACK's average pooling) times the grid's size, summed over the batch, about six times faster than its Sum
 * kernel over the same axes.
 */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  if (x.rank !== 4 || !onWasm())
    return tf.sum(
      x,
      x.shape.slice(0, -1).map((_, i) => i),
    );
  const [, h, w] = x.shape;
  return tf.mul(tf.sum(tf.avgPool(x as tf.Tensor4D, [h, w], 1, 'valid'), [0, 1, 2]), h * w);
}

/**
 * Training-mode batch norm, (x - mean) / sqrt(var + eps) * gamma + beta with the batch's statistics, and its
 * gradient written out (Ioffe and Szegedy 2015, section 3): dx = gamma / sigma * (dy - mean(dy) - xhat *
 * mean(dy * xhat)). The same values as differentiating the formula op by op, in fewer and faster passes over
 * the activations (each op is a pass on wasm): 6 forward and 7 backward, against about 8 and 14, sums as
 * `channelSum`, and per-channel products where wasm's fused batch norm kernel is 2-3 times slower.
 * `statistics` receives the batch's mean and variance.
 */
function trainingBatchNorm(
  statistics: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, gamma, beta] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const count = x.size / x.shape[x.shape.length - 1];
    const mean: tf.Tensor1D = tf.div(channelSum(x), count);
    const centred = tf.sub(x, mean);
    const variance: tf.Tensor1D = tf.div(channelSum(tf.square(centred)), count);
    statistics(mean, variance);
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const scale = tf.mul(gamma, invStd); // gamma / sigma
    save([centred, invStd, scale]);
    return {
      value: tf.add(tf.mul(centred, scale), beta),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [c, inv, k] = saved;
        const dBeta = channelSum(dy);
        const dGamma = tf.mul(channelSum(tf.mul(dy, c)), inv);
        // dx = k dy + c k1 + k0
        const k1 = tf.neg(tf.mul(tf.mul(k, inv), tf.div(dGamma, count)));
        const k0 = tf.neg(tf.mul(k, tf.div(dBeta, count)));
        const dx = tf.add(tf.add(tf.mul(dy, k), tf.mul(c, k1)), k0);
        return [dx, dGamma, dBeta];
      },
    };
  }) as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;
}

/**
 * tanh(x) as 2 sigmoid(2x) - 1: on wasm tf.tanh is a scalar loop (about 15 ms for G's output at 64 images of
 * 64x64x3) where sigmoid is XNNPACK's (about 1.6 ms for the three ops). Equal to float rounding; other backends
 * keep tf.tanh.
 */
export const tanh = <T extends tf.Tensor>(x: T): T =>
  onWasm() ? (tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) as T) : tf.tanh(x);

const LEAKY_SLOPE = 0.2;

/**
 * Leaky ReLU (slope 0.2) for wasm: a PReLU with that slope on every channel, its gradient dy x step(x) (1 where
 * x > 0, else 0.2). The same values as tf.leakyRelu, whose wasm kernel is a scalar loop about ten times slower,
 * as is its gradient (a comparison, a select and a product).
 */
const preluLeaky = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const x = args[0] as tf.Tensor;
  (args[1] as tf.GradSaveFunc)([x]);
  return {
    value: tf.prelu(x, tf.fill([x.shape[x.shape.length - 1]], LEAKY_SLOPE)),
    gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.mul(dy, tf.step(saved, LEAKY_SLOPE)),
  };
});

export const leaky = <T extends tf.Tensor>(x: T): T => (onWasm() ? preluLeaky(x) : tf.leakyRelu(x, LEAKY_SLOPE)) as T;
