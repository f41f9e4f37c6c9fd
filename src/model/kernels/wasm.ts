/**
 * The wasm backend's training kernels: what it lacks (Conv2DBackpropFilter) and what it runs slowly
 * (Conv2DBackpropInput, transposed BatchMatMul) replaced by exact formulations on its fast ops.
 * Call after the wasm backend is initialised: the kernels replaced keep their own set-up.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchMatMulKernel } from './batch-matmul.ts';
import { conv2dBackpropFilterKernel } from './conv2d-backprop-filter.ts';
import { conv2dBackpropInputKernel } from './conv2d-backprop-input.ts';

let installed = false;

function replace(kernelName: string, make: (previous: tf.KernelFunc) => tf.KernelFunc): void {
  const previous = tf.getKernel(kernelName, 'wasm');
  if (previous) tf.unregisterKernel(kernelName, 'wasm');
  const fallback: tf.KernelFunc = previous
    ? previous.kernelFunc
    : () => {
        throw new Error(`${kernelName} has no wasm kernel to fall back to`);
      };
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: make(fallback) });
}

export function installWasmTrainingKernels(): void {
  if (installed) return;
  installed = true;
  replace('Conv2DBackpropFilter', () => conv2dBackpropFilterKernel);
  replace('Conv2DBackpropInput', conv2dBackpropInputKernel);
  replace('BatchMatMul', batchMatMulKernel);
}
