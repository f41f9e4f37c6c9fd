/**
 * BatchMatMul for wasm: XNNPACK's fast path only takes untransposed operands, and every matMul gradient
 * asks for a transpose, which otherwise falls to a slow loop. Transposing first is exact and much faster.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { asKernelOutput, asTensor } from './output.ts';

function swapLastTwo(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(t, perm);
}

export function batchMatMulKernel(untransposed: KernelFunc): KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    if (!transposeA && !transposeB) return untransposed({ inputs, attrs, backend });
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const out = tf.tidy(() => {
      const at = transposeA ? swapLastTwo(asTensor(backend, a)) : asTensor(backend, a);
      const bt = transposeB ? swapLastTwo(asTensor(backend, b)) : asTensor(backend, b);
      return tf.matMul(at, bt); // runs this kernel again, now without transposes
    });
    return asKernelOutput(backend, out);
  };
}
