/**
 * Picks the TensorFlow.js backend at run time, best first: node-gpu (CUDA through libtensorflow), node
 * (libtensorflow on CPU), wasm (XNNPACK, with ganvas's training kernels), cpu (pure JS, slow).
 * The native packages are optional dependencies: where they could not install, they are skipped.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
// The union package registers every op's gradient (tfjs-core's CommonJS build does not) and the cpu backend.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BACKENDS, type BackendChoice, type BackendName } from './backends.ts';
import { installWasmTrainingKernels } from './kernels/wasm.ts';

const NATIVE_PACKAGE: Record<'node-gpu' | 'node', string> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

let chosen: BackendName | null = null;

/** Loads a native binding; false where the package or its libtensorflow is missing. */
function loadNative(name: 'node-gpu' | 'node'): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(NATIVE_PACKAGE[name]);
    return tf.findBackend('tensorflow') !== null;
  } catch {
    return false; // not installed (MODULE_NOT_FOUND) or its binding failed to load
  }
}

async function tryBackend(name: BackendName): Promise<boolean> {
  if (name === 'node-gpu' || name === 'node') {
    if (!loadNative(name)) return false;
    return tf.setBackend('tensorflow');
  }
  const ok = await tf.setBackend(name);
  if (ok && name === 'wasm') installWasmTrainingKernels();
  // the cpu backend's first tensor prints a banner asking for tfjs-node, which ganvas loads itself wherever it
  // installs (GANVAS_BACKEND=auto); production mode only silences TensorFlow.js's warnings
  if (ok && name === 'cpu') tf.enableProdMode();
  return ok;
}

/**
 * Training threads to use by default: every core for wasm and cpu, which compute on the thread that calls
 * them; one for libtensorflow (node, node-gpu), which spreads one thread's ops over the cores or the GPU.
 */
export function defaultThreads(backend: BackendName): number {
  return backend === 'wasm' || backend === 'cpu' ? availableParallelism() : 1;
}

/**
 * Initialises the backend once per process and returns its name. `auto` takes the first that works;
 * a named one must work. `log` receives one line saying which backend runs.
 */
export async function initBackend(
  choice: BackendChoice = 'auto',
  log: (line: string) => void = () => {},
): Promise<BackendName> {
  if (chosen) return chosen;
  const candidates: readonly BackendName[] = choice === 'auto' ? BACKENDS : [choice];
  for (const name of candidates) {
    if (await tryBackend(name)) {
      chosen = name;
      log(`tensorflow.js backend: ${name}${name === 'wasm' ? ' (XNNPACK, ganvas training kernels)' : ''}`);
      return name;
    }
  }
  throw new Error(`tensorflow.js backend ${choice} is not available here`);
}
