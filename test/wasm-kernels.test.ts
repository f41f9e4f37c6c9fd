/**
 * ganvas's wasm training kernels against the cpu backend's own gradients: conv2d's input and filter
 * gradients, conv2dTranspose forward (which runs Conv2DBackpropInput), and transposed matMuls.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/model/backend.ts';
import { Rng } from '../src/model/random.ts';

/** Bound on max |wasm - cpu| relative to the largest |cpu| value: float32 sums in another order. */
const TOLERANCE = 1e-5;

interface Case {
  size: [number, number];
  kernel: number;
  stride: 1 | 2;
  pad: 'same' | 'valid';
  inC: number;
  outC: number;
}

const cases: Case[] = [];
for (const stride of [1, 2] as const)
  for (const pad of ['same', 'valid'] as const)
    for (const kernel of [3, 4, 5])
      for (const size of [
        [8, 8],
        [7, 9],
      ] as [number, number][])
        cases.push({ size, kernel, stride, pad, inC: 3, outC: 5 });

function randomArray(rng: Rng, shape: number[]): Float32Array {
  return rng.normals(shape.reduce((a, b) => a * b, 1));
}

type Input = { data: Float32Array; shape: number[] };
type Fn = (...t: tf.Tensor[]) => tf.Tensor[];

/** Outputs of `f` on the current backend, as plain arrays. */
async function run(inputs: Input[], f: Fn): Promise<Float32Array[]> {
  const outs = tf.tidy(() => f(...inputs.map((i) => tf.tensor(i.data, i.shape))));
  const arrays = await Promise.all(outs.map((o) => o.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return arrays;
}

/** Max |a - b| and that divided by max |a|. */
function diff(a: Float32Array, b: Float32Array): { abs: number; rel: number } {
  assert.equal(a.length, b.length);
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return { abs, rel: abs / Math.max(scale, 1e-12) };
}

/**
 * Every check is declared first, then run on cpu (the reference) and once on wasm: the process
 * switches backend once, since tensors cached under one backend break the other.
 */
const checks: { name: string; inputs: Input[]; f: Fn; cpu?: Float32Array[]; wasm?: Float32Array[] }[] = [];
function check(name: string, inputs: Input[], f: Fn): void {
  const c: (typeof checks)[number] = { name, inputs, f };
  checks.push(c);
  test(name, () => {
    const diffs = c.cpu!.map((want, i) => diff(want, c.wasm![i]));
    console.log(
      `${name}: max |wasm - cpu| ${diffs.map((d) => `${d.abs.toExponential(2)} (relative ${d.rel.toExponential(2)})`).join(', ')}`,
    );
    for (const d of diffs) assert.ok(d.rel < TOLERANCE, `relative difference ${d.rel}`);
  });
}

before(async () => {
  await tf.setBackend('cpu');
  for (const c of checks) c.cpu = await run(c.inputs, c.f);
  await initBackend('wasm');
  for (const c of checks) c.wasm = await run(c.inputs, c.f);
});

for (const c of cases) {
  const rng = new Rng(c.kernel * 100 + c.stride * 10 + c.size[1]);
  const x = { data: randomArray(rng, [2, ...c.size, c.inC]), shape: [2, ...c.size, c.inC] };
  const w = { data: randomArray(rng, [c.kernel, c.kernel, c.inC, c.outC]), shape: [c.kernel, c.kernel, c.inC, c.outC] };
  const loss = (a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad)));
  check(`conv2d dx, dW ${c.size.join('x')} k${c.kernel} s${c.stride} ${c.pad}`, [x, w], (xt, wt) =>
    tf.grads(loss)([xt, wt]),
  );
  if (c.pad === 'same') {
    const outShape: [number, number, number, number] = [2, c.size[0] * c.stride, c.size[1] * c.stride, c.inC];
    const wt = {
      data: randomArray(rng, [c.kernel, c.kernel, c.inC, c.outC]),
      shape: [c.kernel, c.kernel, c.inC, c.outC],
    };
    const y = { data: randomArray(rng, [2, ...c.size, c.outC]), shape: [2, ...c.size, c.outC] };
    check(`conv2dTranspose forward ${c.size.join('x')} k${c.kernel} s${c.stride}`, [y, wt], (yt, f) => [
      tf.conv2dTranspose(yt as tf.Tensor4D, f as tf.Tensor4D, outShape, c.stride, 'same'),
    ]);
  }
}

{
  // the wasm kernel keeps each filter's phase filters by buffer: a variable's new value must not reuse them
  const rng = new Rng(4);
  const y = { data: randomArray(rng, [2, 4, 4, 6]), shape: [2, 4, 4, 6] };
  const w1 = { data: randomArray(rng, [4, 4, 3, 6]), shape: [4, 4, 3, 6] };
  const w2 = { data: randomArray(rng, [4, 4, 3, 6]), shape: [4, 4, 3, 6] };
  check('conv2dTranspose with a variable filter, before and after assign', [y, w1, w2], (yt, a, b) => {
    const v = tf.variable(a);
    const up = () => tf.conv2dTranspose(yt as tf.Tensor4D, v as tf.Variable<tf.Rank.R4>, [2, 8, 8, 3], 2, 'same');
    const outs = [up(), up()];
    v.assign(b);
    outs.push(up());
    v.dispose();
    return outs;
  });
}

test('the phase filters are made once per filter buffer and freed after it', () => {
  const y = tf.randomNormal([1, 4, 4, 6]) as tf.Tensor4D;
  const up = (w: tf.Tensor4D, stride: 1 | 2) =>
    tf.conv2dTranspose(y, w, [1, 4 * stride, 4 * stride, 3], stride, 'same').dispose();
  const w = tf.randomNormal([4, 4, 3, 6]) as tf.Tensor4D;
  up(w, 2); // also frees what earlier tests left
  const held = tf.memory().numTensors;
  up(w, 2);
  assert.equal(tf.memory().numTensors, held, 'made once');
  const w1 = tf.randomNormal([3, 3, 3, 6]) as tf.Tensor4D;
  up(w1, 1);
  assert.equal(tf.memory().numTensors, held + 2, 'a new filter and its one phase (stride 1)');
  w.dispose();
  up(w1, 1);
  assert.equal(tf.memory().numTensors, held + 2 - 1 - 4, "the freed filter's four phases (stride 2) go");
  tf.dispose([y, w1]);
});

{
  const rng = new Rng(3);
  const a = { data: randomArray(rng, [6, 5]), shape: [6, 5] };
  const b = { data: randomArray(rng, [4, 5]), shape: [4, 5] };
  const loss = (p: tf.Tensor, q: tf.Tensor) =>
    tf.sum(tf.square(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, false, true)));
  check('matMul with transposes, and its gradients', [a, b], (at, bt) => [
    tf.matMul(at as tf.Tensor2D, bt as tf.Tensor2D, false, true),
    tf.matMul(at as tf.Tensor2D, at as tf.Tensor2D, true, false),
    ...tf.grads(loss)([at, bt]),
  ]);
}
