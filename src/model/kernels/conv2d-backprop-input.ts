/**
 * Conv2DBackpropInput for wasm, by phases. The built-in wasm kernel is a scalar loop; this is also what
 * conv2dTranspose runs forward, so the generator spends most of its time here.
 *
 * For stride s, output row y = s*m + p (phase p) only meets filter taps r, r+s, r+2s, ... with
 * r = (p + padTop) mod s. So each of the s*s phases is one stride-1 convolution of dy with that phase's
 * taps (flipped, in/out channels swapped), which XNNPACK runs fast; the phases are then interleaved.
 * Exact: the same products and sums as the definition, in another order.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { asKernelOutput, asTensor, cropThenPad } from './output.ts';

interface AxisPhase {
  /** Filter taps this phase uses, in correlation order (flipped). */
  taps: number[];
  /** Rows to add (positive) or cut (negative) before and after dy for a 'valid' stride-1 correlation. */
  before: number;
  after: number;
}

/** The filter taps phase p of one axis uses, flipped: r + s*j for j = J..0, with r = (p + padBefore) mod s. */
function phaseTaps(p: number, stride: number, kernel: number, padBefore: number): number[] {
  const taps: number[] = [];
  for (let t = (p + padBefore) % stride; t < kernel; t += stride) taps.unshift(t);
  return taps;
}

/** Phase p of one axis: dx[s*m + p] = sum_j dy[m + q - j] * w[r + s*j]. */
function axisPhase(
  p: number,
  stride: number,
  kernel: number,
  padBefore: number,
  dyLength: number,
  phaseLength: number,
): AxisPhase {
  const taps = phaseTaps(p, stride, kernel, padBefore);
  const q = Math.floor((p + padBefore) / stride);
  const before = taps.length - 1 - q;
  const after = phaseLength + taps.length - 1 - dyLength - before;
  return { taps, before, after };
}

/**
 * Interleaves equally shaped [B, H, W, C] tensors along `axis` (1: rows, 2: columns): stacked on a new outer
 * axis and moved in by one transpose (concatenating on inner axes is a slow copy loop on wasm).
 */
function interleave(parts: tf.Tensor4D[], [b, h, w, c]: number[], axis: 1 | 2): tf.Tensor4D {
  const n = parts.length;
  const inner = axis === 1 ? w * c : c;
  const outer = axis === 1 ? b * h : b * h * w;
  const moved = tf.transpose(tf.reshape(tf.stack(parts, 0), [n, outer, inner]), [1, 0, 2]); // [outer, n, inner]
  return tf.reshape(moved, axis === 1 ? [b, h * n, w, c] : [b, h, w * n, c]);
}

/**
 * Rows (axis 0) or columns (axis 1) `taps` of a filter, in that order: slices and one concat (gather is slow on wasm).
 */
function pick(filter: tf.Tensor4D, taps: number[], axis: 0 | 1): tf.Tensor4D {
  const size = [...filter.shape];
  size[axis] = 1;
  const parts = taps.map((t) => tf.slice(filter, axis === 0 ? [t, 0, 0, 0] : [0, t, 0, 0], size));
  return parts.length === 1 ? parts[0] : tf.concat(parts, axis);
}

/**
 * Each phase's filter, by phase (py, px) in row-major order: its taps (flipped, in/out channels swapped), or
 * null where the phase meets no tap.
 */
export function phaseFilters(filter: tf.Tensor4D, info: backend_util.Conv2DInfo): (tf.Tensor4D | null)[] {
  const { strideHeight: sh, strideWidth: sw } = info;
  const filters: (tf.Tensor4D | null)[] = [];
  for (let py = 0; py < sh; py++)
    for (let px = 0; px < sw; px++) {
      const rows = phaseTaps(py, sh, info.filterHeight, info.padInfo.top);
      const cols = phaseTaps(px, sw, info.filterWidth, info.padInfo.left);
      filters.push(
        rows.length === 0 || cols.length === 0
          ? null
          : (tf.transpose(pick(pick(filter, rows, 0), cols, 1), [0, 1, 3, 2]) as tf.Tensor4D),
      );
    }
  return filters;
}

/** dx from dy and `phaseFilters` of the filter. */
export function conv2dBackpropInputByPhases(
  dy: tf.Tensor4D,
  phases: (tf.Tensor4D | null)[],
  info: backend_util.Conv2DInfo,
): tf.Tensor4D {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight: sh, strideWidth: sw } = info;
  const mh = Math.ceil(inHeight / sh);
  const mw = Math.ceil(inWidth / sw);
  return tf.tidy((): tf.Tensor4D => {
    const rows: tf.Tensor4D[] = [];
    for (let py = 0; py < sh; py++) {
      const ay = axisPhase(py, sh, info.filterHeight, info.padInfo.top, outHeight, mh);
      const cols: tf.Tensor4D[] = [];
      for (let px = 0; px < sw; px++) {
        const ax = axisPhase(px, sw, info.filterWidth, info.padInfo.left, outWidth, mw);
        const w = phases[py * sw + px];
        if (!w) {
          cols.push(tf.zeros([batchSize, mh, mw, inChannels]));
          continue;
        }
        const x = cropThenPad(dy, [ay.before, ay.after], [ax.before, ax.after]);
        cols.push(tf.conv2d(x, w, 1, 'valid')); // [B, mh, mw, inC]
      }
      rows.push(sw === 1 ? cols[0] : interleave(cols, [batchSize, mh, mw, inChannels], 2));
    }
    // [B, mh, sh, mw*sw, C] -> [B, mh*sh, mw*sw, C], then cut to the input's size
    const all = sh === 1 ? rows[0] : interleave(rows, [batchSize, mh, mw * sw, inChannels], 1);
    const exact = all.shape[1] === inHeight && all.shape[2] === inWidth;
    return (exact ? all : tf.slice(all, [0, 0, 0, 0], [batchSize, inHeight, inWidth, inChannels])) as tf.Tensor4D;
  });
}

interface Buffers {
  dataIdMap: { has(dataId: object): boolean };
}

/**
 * Phase filters of the filters in use, by the filter's buffer and its shape and layout: made once per filter
 * buffer instead of once per call, which also lets XNNPACK keep its packed copy of each. That serves the served
 * G (its kernels are made once per set of weights) and, in training, the paper's transposed upsampling (G's
 * weights in both steps of a training step); a kernel made on every call, as resize-convolution training does,
 * gains nothing. An entry goes on the first call after its filter's buffer is freed (a variable's new value is
 * a new buffer), so the last model's stay allocated until the next call.
 */
const phaseCache = new Map<object, Map<string, (tf.Tensor4D | null)[]>>();

function cachedPhaseFilters(
  backend: unknown,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): (tf.Tensor4D | null)[] {
  for (const [dataId, byLayout] of phaseCache)
    if (!(backend as Buffers).dataIdMap.has(dataId)) {
      for (const phases of byLayout.values()) tf.dispose(phases.filter((w) => w !== null));
      phaseCache.delete(dataId);
    }
  const layout = [...filter.shape, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left].join();
  const byLayout = phaseCache.get(filter.dataId) ?? new Map<string, (tf.Tensor4D | null)[]>();
  phaseCache.set(filter.dataId, byLayout);
  let phases = byLayout.get(layout);
  if (!phases) {
    const made: (tf.Tensor4D | null)[] = [];
    tf.tidy(() => {
      for (const w of phaseFilters(asTensor(backend, filter), info)) made.push(w && tf.keep(w));
    });
    byLayout.set(layout, (phases = made));
  }
  return phases;
}

/** Replaces the wasm kernel; dilated or channels-first calls go to the one it replaces. */
export function conv2dBackpropInputKernel(fallback: KernelFunc): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
    const info = backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape as [number, number, number, number],
      a.strides,
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      backend_util.convertConv2DDataFormat(a.dataFormat),
    );
    if (info.dataFormat !== 'channelsLast') return fallback({ inputs, attrs, backend });
    const phases = cachedPhaseFilters(backend, filter, info);
    const out = tf.tidy(() => conv2dBackpropInputByPhases(asTensor(backend, dy), phases, info));
    return asKernelOutput(backend, out);
  };
}
