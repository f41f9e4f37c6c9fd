/** The worker's inference threads: a pass split between two threads gives the pixels one thread gives. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { Inference, defaultThreads } from '../src/gpu-worker/inference.ts';
import { noiseForSeed } from '../src/model/random.ts';
import { tinyModelDir } from './support/model.ts';

test('two inference threads split a pass and give the same pixels as one; a GPU gets one thread', async () => {
  const dir = await tinyModelDir();
  const [one, two] = [await Inference.start(dir, 'wasm', () => {}, 1), await Inference.start(dir, 'wasm', () => {}, 2)];
  try {
    assert.deepEqual([one.threadCount, two.threadCount], [1, 2]);
    const [h] = await one.embed(['a red flower']);
    assert.deepEqual(await two.embed(['a red flower']), [h]);
    const items = Array.from({ length: 5 }, (_, i) => ({ z: noiseForSeed(i, one.config.zDim), h }));
    const pixels = await one.draw(items);
    assert.equal(pixels.length, 5);
    assert.deepEqual(await two.draw(items), pixels);
    assert.deepEqual(await two.draw(items.slice(0, 1)), pixels.slice(0, 1));
  } finally {
    await Promise.all([one.stop(), two.stop()]);
  }
  // by initBackend's names: the native ones got a thread per core (a GPU's pass split into slivers)
  assert.equal(defaultThreads('node-gpu'), 1);
  assert.equal(defaultThreads('node'), 1);
  assert.equal(defaultThreads('wasm'), Math.max(1, availableParallelism() - 1));
});
