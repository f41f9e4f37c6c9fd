/**
 * GAN-INT-CLS structure and arithmetic on tiny shapes (wasm backend): output shapes, loss terms and
 * weights, which weights each step moves, no tensor leaks, checkpoints, exact resume, the text encoder.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { generateFlowers } from '../src/data/generate.ts';
import { Adam } from '../src/model/adam.ts';
import { initBackend } from '../src/model/backend.ts';
import { exportCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.ts';
import { readCheckpointMeta } from '../src/model/checkpoint-meta.ts';
import {
  attributeLoss,
  bceWithLogits,
  discriminatorLoss,
  generatorLoss,
  modeSeekingLoss,
  textMatchLoss,
} from '../src/model/losses.ts';
import { type Model, buildModel, disposeModel, networkParams } from '../src/model/model.ts';
import { Rng } from '../src/model/random.ts';
import { buildTextEncoder, encodeCaption } from '../src/model/networks.ts';
import { Synthesizer } from '../src/model/synthesizer.ts';
import { type TfjsWeightsGroup, fromTfjsManifest, readTensors } from '../src/model/tensor-file.ts';
import {
  type GanBatch,
  type StepOptions,
  applyStep,
  discriminatorGrads,
  trainedParams,
  generatorGrads,
  styleGrads,
  textGrads,
} from '../src/train/steps.ts';
import { type TrainOptions, train } from '../src/train/trainer.ts';
import { tinyConfig, tinyRun } from './support/model.ts';

const B = 4;

function batch(model: Model, rng: Rng): GanBatch {
  const { zDim, embedDim, imageSize: s } = model.config;
  const t = (shape: number[]) => tf.tensor(rng.normals(shape.reduce((a, b) => a * b, 1)), shape);
  const tensors = tf.tidy(() => ({
    real: tf.tanh(t([B, s, s, 3])) as tf.Tensor4D,
    h: t([B, embedDim]) as tf.Tensor2D,
    hWrong: t([B, embedDim]) as tf.Tensor2D,
    z: t([B, zDim]) as tf.Tensor2D,
    hInt: t([B / 2, embedDim]) as tf.Tensor2D,
    zInt: t([B / 2, zDim]) as tf.Tensor2D,
    zPair: t([B / 2, zDim]) as tf.Tensor2D,
  }));
  return { ...tensors, eps: null, epsInt: null, epsPair: null, shift: null, shiftInt: null };
}

const stepOptions = (diversity = 0, textMatch = 0): StepOptions => ({
  variant: 'gan-int-cls',
  diversity,
  objective: 'bce',
  textMatch,
  textAttributes: 0,
});
const disposeBatch = (b: GanBatch) => tf.dispose(Object.values(b).filter((t) => t !== null));

function snapshot(model: Model): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [net, p] of networkParams(model))
    for (const [n, v] of p.trainable) out.set(`${net}/${n}`, v.dataSync() as Float32Array);
  return out;
}

function changed(a: Map<string, Float32Array>, b: Map<string, Float32Array>): Set<string> {
  const nets = new Set<string>();
  for (const [k, v] of a) if (v.some((x, i) => x !== b.get(k)![i])) nets.add(k.split('/')[0]);
  return nets;
}

/**
 * A tiny data set in a fresh folder, and tiny runs on it into its folder `name` (seed 6, a moving average of 0.9
 * and 2 batches of standing statistics, then `defaults`, then each run's overrides).
 */
async function tinyRuns(prefix: string, defaults: Partial<TrainOptions> = {}) {
  const root = await mkdtemp(join(tmpdir(), prefix));
  await generateFlowers({ out: join(root, 'data'), images: 24, size: 38, seed: 3, species: 6, testSpecies: 2 });
  return {
    run: (name: string, overrides: Partial<TrainOptions> = {}) =>
      train(
        tinyRun(join(root, 'data'), join(root, name), {
          seed: 6,
          ema: 0.9,
          standingStats: 2,
          ...defaults,
          ...overrides,
        }),
      ),
    checkpoint: (name: string) => join(root, name, 'checkpoint'),
  };
}

/**
 * Two runs that differ only in how the served model draws its noise: the same trained weights but S, and other
 * batch-norm statistics in the served G (standing statistics made at each run's noise).
 */
function assertServedNoiseOnly(base: Model, other: Model): void {
  assert.deepEqual([...changed(snapshot(base), snapshot(other))].sort(), ['style']);
  const norms = [...base.ema!.params.stats].filter(([n]) => n.includes('.bn.'));
  assert.ok(norms.some(([n, v]) => !tf.tidy(() => tf.equal(v, other.ema!.params.stats.get(n)!).all().dataSync()[0])));
}

before(async () => {
  await initBackend('wasm');
});

describe('networks', () => {
  for (const size of [32, 64, 128] as const) {
    test(`output shapes at ${size}x${size}`, () => {
      const model = buildModel(tinyConfig(size), 1);
      const { zDim, embedDim } = model.config;
      tf.tidy(() => {
        const b = batch(model, new Rng(1));
        const ids = tf.zeros([B, model.config.text.maxLength], 'int32') as tf.Tensor2D;
        assert.deepEqual(model.text.forward(ids).shape, [B, embedDim]);
        const x = model.generator.forward(b.z, b.h, true);
        assert.deepEqual(x.shape, [B, size, size, 3]);
        assert.deepEqual(model.discriminator!.forward(x, b.h, true).shape, [B]);
        assert.deepEqual(model.style.forward(x, false).shape, [B, zDim]);
        assert.deepEqual(model.image!.forward(x, true).shape, [B, embedDim]);
      });
      disposeModel(model);
    });
  }
});

describe('the projection discriminator', () => {
  test("adds <image features pooled, W phi> to the paper's logit, and D's gradient reaches W", () => {
    const paper = buildModel(tinyConfig(32), 1);
    const projected = buildModel({ ...tinyConfig(32), discriminator: 'projection' }, 1);
    const b = batch(paper, new Rng(1));
    tf.tidy(() => {
      const x = paper.generator.forward(b.z, b.h, false);
      const w = projected.discriminator!.params.trainable.get('inner.w')!;
      const D = paper.discriminator!;
      const pooled = tf.mean(D.features(x, false), [1, 2]);
      const want = tf.add(D.forward(x, b.h, false), tf.sum(tf.mul(pooled, tf.matMul(b.h, w)), 1));
      const got = projected.discriminator!.forward(x, b.h, false);
      assert.ok(tf.sub(got, want).abs().max().dataSync()[0] < 1e-5);
      assert.ok(
        tf
          .sub(got, D.forward(x, b.h, false))
          .abs()
          .max()
          .dataSync()[0] > 0,
        'the term is there',
      );
    });
    const { grads } = discriminatorGrads(projected, b, stepOptions());
    const g = [...grads].find(([name]) => name.endsWith('inner.w'));
    assert.ok(g && tf.tidy(() => g[1].abs().max().dataSync()[0]) > 0, 'W learns');
    tf.dispose([...grads.values()]);
    disposeBatch(b);
    disposeModel(paper);
    disposeModel(projected);
  });
});

describe("G's text affine layers", () => {
  test("start as the paper's G, then scale and shift each batch norm by the code (training and inference); G learns them", () => {
    const paper = buildModel(tinyConfig(32), 1);
    const affine = buildModel({ ...tinyConfig(32), generator: 'affine' }, 1);
    const b = batch(paper, new Rng(1));
    const gap = (training: boolean) =>
      tf.tidy(
        () =>
          tf
            .sub(affine.generator.forward(b.z, b.h, training), paper.generator.forward(b.z, b.h, training))
            .abs()
            .max()
            .dataSync()[0],
      );
    const affineParams = [...affine.generator.params.trainable].filter(([name]) => name.startsWith('affine'));
    assert.equal(affineParams.length, 6, 'w and b per batch norm at 32x32: fc.bn, up0.bn, up1.bn');
    assert.ok(gap(true) < 1e-6 && gap(false) < 1e-6, 'zero weights: the paper G');
    const { grads } = generatorGrads(affine, b, stepOptions());
    for (const [name] of affineParams) {
      const g = [...grads].find(([n]) => n.endsWith(`generator/${name}`) || n === name)?.[1];
      assert.ok(g && tf.tidy(() => g.abs().max().dataSync()[0]) > 0, `${name} learns`);
    }
    tf.dispose([...grads.values()]);
    for (const [, v] of affineParams) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', 1));
    assert.ok(gap(true) > 1e-3 && gap(false) > 1e-3, 'the code moves every batch norm, folded or not');
    // one image's code scales only that image: the first row with the second's caption changes
    const h2 = tf.concat([b.h.slice(1, 1), b.h.slice(1)]) as tf.Tensor2D;
    tf.tidy(() => {
      const [x, y] = [affine.generator.forward(b.z, b.h, false), affine.generator.forward(b.z, h2, false)];
      assert.ok(tf.sub(x.slice(0, 1), y.slice(0, 1)).abs().max().dataSync()[0] > 1e-3);
      assert.ok(tf.sub(x.slice(1), y.slice(1)).abs().max().dataSync()[0] < 1e-5);
    });
    h2.dispose();
    disposeBatch(b);
    disposeModel(paper);
    disposeModel(affine);
  });
});

describe('losses', () => {
  test('binary cross-entropy with logits equals its definition', () => {
    const logits = tf.tensor1d([-3, -0.5, 0, 2]);
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const want1 = [-3, -0.5, 0, 2].reduce((s, x) => s - Math.log(sig(x)), 0) / 4;
    const want0 = [-3, -0.5, 0, 2].reduce((s, x) => s - Math.log(1 - sig(x)), 0) / 4;
    assert.ok(Math.abs(bceWithLogits(logits, 1).dataSync()[0] - want1) < 1e-5);
    assert.ok(Math.abs(bceWithLogits(logits, 0).dataSync()[0] - want0) < 1e-5);
  });

  test('GAN-CLS discriminator loss weighs real 1, wrong 1/2, fake 1/2; GAN has no wrong term', () => {
    const [r, w, f] = [tf.tensor1d([1, 2]), tf.tensor1d([0.5, -1]), tf.tensor1d([-2, 0.3])];
    const cls = discriminatorLoss(r, w, f);
    const v = (t: tf.Tensor) => t.dataSync()[0];
    assert.ok(
      Math.abs(v(cls.total) - (v(cls.terms.real) + 0.5 * v(cls.terms.wrong!) + 0.5 * v(cls.terms.fake))) < 1e-6,
    );
    const plain = discriminatorLoss(r, null, f);
    assert.ok(Math.abs(v(plain.total) - (v(plain.terms.real) + v(plain.terms.fake))) < 1e-6);
    assert.equal(plain.terms.wrong, null);
  });

  test('GAN-INT generator loss adds the interpolated term with weight 1', () => {
    const g = generatorLoss(tf.tensor1d([0.1, -0.4]), tf.tensor1d([1.5]));
    const v = (t: tf.Tensor) => t.dataSync()[0];
    assert.ok(Math.abs(v(g.total) - (v(g.fake) + v(g.interpolated!))) < 1e-6);
    assert.ok(Math.abs(v(g.interpolated!) - v(bceWithLogits(tf.tensor1d([1.5]), 1))) < 1e-6);
  });

  test('mode seeking is 1 / (mean image distance / mean noise distance) and falls as the images differ more', () => {
    const v = (t: tf.Tensor) => t.dataSync()[0];
    const z1 = tf.tensor2d([
      [0, 0],
      [1, 1],
    ]);
    const z2 = tf.tensor2d([
      [2, 0],
      [1, -1],
    ]); // mean |z1 - z2| = 1
    const a = tf.zeros([2, 2, 2, 3]) as tf.Tensor4D;
    const near = tf.fill([2, 2, 2, 3], 0.1) as tf.Tensor4D;
    const far = tf.fill([2, 2, 2, 3], 0.5) as tf.Tensor4D;
    assert.ok(Math.abs(v(modeSeekingLoss(a, near, z1, z2)) - 1 / (0.1 + 1e-5)) < 1e-3);
    assert.ok(v(modeSeekingLoss(a, far, z1, z2)) < v(modeSeekingLoss(a, near, z1, z2)));
  });

  test('the mode-seeking term is added to the G loss with its weight, and only when asked for', () => {
    const model = buildModel(tinyConfig(32), 8);
    const b = batch(model, new Rng(9));
    const losses = (diversity: number) => {
      const r = generatorGrads(model, b, stepOptions(diversity));
      tf.dispose([...r.grads.values()]);
      return r.terms;
    };
    const plain = losses(0);
    const seeking = losses(2);
    assert.equal(plain.ms, 0);
    assert.ok(seeking.ms > 0);
    // BN batch statistics in G see the extra images, so G's own term moves a little; the total carries 2 x ms
    assert.ok(
      Math.abs(seeking.g - (plain.g + 2 * seeking.ms)) < 0.2 * plain.g + 1e-3,
      `${seeking.g} vs ${plain.g} + 2 x ${seeking.ms}`,
    );
    disposeBatch(b);
    disposeModel(model);
  });

  test("the caption-matching term: zero where each image scores its own caption a margin above the others'", () => {
    const v = (x: tf.Scalar) => x.dataSync()[0];
    const captions = tf.tensor2d([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    // image i's embedding along caption i, long enough to beat the others by more than 1
    const ranked = tf.tensor2d([
      [4, -4],
      [-4, 4],
      [2, 2],
    ]);
    assert.equal(v(textMatchLoss(ranked, captions)), 0);
    // images 0 and 1 swapped: each scores 8 below the caption it was drawn for, against the one it shows
    const swapped = tf.tensor2d([
      [-4, 4],
      [4, -4],
      [2, 2],
    ]);
    assert.ok(v(textMatchLoss(swapped, captions)) > 1);
    // the margin: a tie costs 1 a pair
    const tied = tf.zeros([3, 2]) as tf.Tensor2D;
    assert.equal(v(textMatchLoss(tied, captions)), 1);
    tf.dispose([captions, ranked, swapped, tied]);
  });

  test("the attribute term: low where captions naming one value lie together, high where they don't", () => {
    const v = (x: tf.Scalar) => x.dataSync()[0];
    // four captions in two directions; one attribute, values 0 0 1 1
    const h = tf.tensor2d([
      [4, 0.1],
      [4, -0.1],
      [0.1, 4],
      [-0.1, 4],
    ]);
    const together = tf.tensor2d([[0], [0], [1], [1]], undefined, 'int32');
    const apart = tf.tensor2d([[0], [1], [0], [1]], undefined, 'int32');
    assert.ok(v(attributeLoss(h, together)) < 0.01);
    assert.ok(v(attributeLoss(h, apart)) > 5);
    // rows that name no value (-1), or a value no other row names, score nothing; all of them: 0
    const unnamed = tf.tensor2d([[-1], [-1], [1], [-1]], undefined, 'int32');
    assert.equal(v(attributeLoss(h, unnamed)), 0);
    // two attributes: the mean over the rows scored, each attribute's rows counted
    const both = tf.tensor2d(
      [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
      ],
      undefined,
      'int32',
    );
    const mean = (v(attributeLoss(h, together)) + v(attributeLoss(h, apart))) / 2;
    assert.ok(Math.abs(v(attributeLoss(h, both)) - mean) < 1e-4);
    // its gradient is finite where a value is named once (its sum less itself is a zero row)
    const g = tf.grad((x: tf.Tensor) =>
      attributeLoss(x as tf.Tensor2D, tf.tensor2d([[0], [0], [1], [2]], undefined, 'int32')),
    );
    assert.ok((g(h).dataSync() as Float32Array).every(Number.isFinite));
    tf.dispose([h, together, apart, unnamed, both]);
  });

  test('the attribute term is added to the text stage with its weight, where the batch has labels', () => {
    const model = buildModel(tinyConfig(32), 8);
    const rng = new Rng(10);
    const b = batch(model, rng);
    const { maxLength } = model.config.text;
    const i = tf.tensor2d(
      Int32Array.from({ length: B * maxLength }, () => rng.int(40)),
      [B, maxLength],
      'int32',
    );
    const labels = tf.tensor2d(
      Int32Array.from({ length: i.shape[0] * 2 }, (_, k) => k % 3),
      [i.shape[0], 2],
    );
    const run = (weight: number, l: tf.Tensor2D | null) => {
      const r = textGrads(model, { images: b.real, ids: i, labels: l }, { ...stepOptions(), textAttributes: weight });
      const grads = new Map([...r.grads].map(([n, g]) => [n, g.dataSync() as Float32Array]));
      tf.dispose([...r.grads.values()]);
      return { loss: r.loss, terms: r.terms, grads };
    };
    const plain = run(0, labels);
    const unlabelled = run(2, null);
    const attributed = run(2, labels);
    assert.deepEqual(Object.keys(plain.terms), ['sje']);
    assert.equal(unlabelled.loss, plain.loss);
    assert.ok(attributed.terms.attributes > 0);
    assert.ok(Math.abs(attributed.loss - (attributed.terms.sje + 2 * attributed.terms.attributes)) < 1e-3);
    assert.ok([...plain.grads].some(([n, g]) => g.some((x, k) => x !== attributed.grads.get(n)![k])));
    tf.dispose([labels, i]);
    disposeBatch(b);
    disposeModel(model);
  });

  test('the caption-matching term is added to the G loss with its weight, and only when asked for', () => {
    const model = buildModel(tinyConfig(32), 8);
    const b = batch(model, new Rng(9));
    const run = (textMatch: number) => {
      const r = generatorGrads(model, b, stepOptions(0, textMatch));
      const grads = new Map([...r.grads].map(([n, g]) => [n, g.dataSync() as Float32Array]));
      tf.dispose([...r.grads.values()]);
      return { terms: r.terms, grads };
    };
    const plain = run(0);
    const matched = run(2);
    assert.equal(plain.terms.match, 0);
    assert.ok(matched.terms.match > 0);
    // the same images (no extra rows through G's batch norm): the total is G's loss + 2 x the term, exactly
    assert.ok(Math.abs(matched.terms.g - (plain.terms.g + 2 * matched.terms.match)) < 1e-4);
    assert.ok([...plain.grads].some(([n, g]) => g.some((x, i) => x !== matched.grads.get(n)![i])));
    disposeBatch(b);
    disposeModel(model);
  });
});

describe('training steps', () => {
  test('a D step moves only D; a G step only G; text and style steps only their networks; no tensor leaks', () => {
    const model = buildModel(tinyConfig(32), 2);
    const rng = new Rng(3);
    const opt = {
      d: new Adam(model.discriminator!.params.trainable),
      g: new Adam(model.generator.params.trainable),
      s: new Adam(model.style.params.trainable),
      t: new Adam(trainedParams(model, 'text')),
    };
    const ids = () =>
      tf.tensor2d(
        Int32Array.from({ length: B * model.config.text.maxLength }, () => rng.int(40)),
        [B, model.config.text.maxLength],
        'int32',
      );
    const steps: [string, () => void, string[]][] = [
      [
        'd',
        () => {
          const b = batch(model, rng);
          applyStep(opt.d, discriminatorGrads(model, b, stepOptions()));
          disposeBatch(b);
        },
        ['discriminator'],
      ],
      [
        'g',
        () => {
          const b = batch(model, rng);
          applyStep(opt.g, generatorGrads(model, b, stepOptions()));
          disposeBatch(b);
        },
        ['generator'],
      ],
      [
        'g + mode seeking',
        () => {
          const b = batch(model, rng);
          applyStep(opt.g, generatorGrads(model, b, stepOptions(1)));
          disposeBatch(b);
        },
        ['generator'],
      ],
      [
        'g + caption matching (the image encoder read, not trained)',
        () => {
          const b = batch(model, rng);
          applyStep(opt.g, generatorGrads(model, b, stepOptions(0, 1)));
          disposeBatch(b);
        },
        ['generator'],
      ],
      [
        'style',
        () => {
          const b = batch(model, rng);
          applyStep(opt.s, styleGrads(model, b));
          disposeBatch(b);
        },
        ['style'],
      ],
      [
        'text',
        () => {
          const b = batch(model, rng);
          const i = ids();
          applyStep(opt.t, textGrads(model, { images: b.real, ids: i, labels: null }, stepOptions()));
          disposeBatch(b);
          i.dispose();
        },
        ['image', 'text'],
      ],
    ];
    for (const [name, step, moves] of steps) {
      step(); // warm-up: optimizer state and kernels allocate once
      const tensors = tf.memory().numTensors;
      const before = snapshot(model);
      step();
      step();
      assert.deepEqual([...changed(before, snapshot(model))].sort(), moves, `${name} step moved the wrong networks`);
      assert.equal(tf.memory().numTensors, tensors, `${name} step leaked tensors`);
    }
    disposeModel(model);
  });
});

describe("D's translation in the steps", () => {
  test('zero shifts give the plain gradients; other shifts change both D and G steps', () => {
    const model = buildModel(tinyConfig(32), 2);
    const b = batch(model, new Rng(7));
    const table = (rows: number, width: number, value: (k: number) => number) =>
      tf.tensor2d(
        Int32Array.from({ length: rows * width }, (_, k) => value(k)),
        [rows, width],
        'int32',
      );
    const still = { ...b, shift: table(B, 4, () => 0), shiftInt: table(B / 2, 2, () => 0) };
    const moved = { ...b, shift: table(B, 4, (k) => (k % 3) - 1), shiftInt: table(B / 2, 2, (k) => 2 * (k % 2) - 1) };
    const largest = (a: Map<string, tf.Tensor>, c: Map<string, tf.Tensor>) =>
      Math.max(...[...a].map(([n, g]) => tf.tidy(() => tf.sub(g, c.get(n)!).abs().max().dataSync()[0])));
    for (const step of [discriminatorGrads, generatorGrads]) {
      const [plain, zero, shifted] = [b, still, moved].map((x) => step(model, x, stepOptions()).grads);
      assert.ok(largest(plain, zero) < 1e-6, `${step.name}: zero shifts changed the gradients`);
      assert.ok(largest(plain, shifted) > 1e-4, `${step.name}: the shifts changed nothing`);
      tf.dispose([plain, zero, shifted].flatMap((g) => [...g.values()]));
    }
    disposeBatch(moved);
    tf.dispose([still.shift, still.shiftInt]);
    disposeModel(model);
  });
});

describe('checkpoints', () => {
  test('save then load gives identical outputs (float32) and close ones (float16)', async () => {
    const model = buildModel(tinyConfig(32), 4, false);
    const dir = await mkdtemp(join(tmpdir(), 'ganvas-ckpt-'));
    const meta = { steps: { text: 0, gan: 1, style: 0 } };
    await saveCheckpoint(join(dir, 'f32'), model, meta);
    await saveCheckpoint(join(dir, 'f16'), model, meta, { dtype: 'float16' });
    const original = Synthesizer.fromModel(model, {
      format: 'ganvas-checkpoint',
      version: 1,
      model: model.config,
      createdAt: '',
      ...meta,
    });
    const items = (s: Synthesizer) => {
      const h = s.embed(['a red flower', 'a blue one']);
      return s.draw(h.map((v, i) => ({ z: new Rng(i).normals(model.config.zDim), h: v })));
    };
    const want = items(original);
    const f32 = await Synthesizer.load(join(dir, 'f32'));
    assert.deepEqual(items(f32), want);
    const f16 = await Synthesizer.load(join(dir, 'f16'));
    const got = items(f16);
    const maxDiff = Math.max(...got.flatMap((img, i) => Array.from(img, (v, k) => Math.abs(v - want[i][k]))));
    assert.ok(maxDiff <= 8, `float16 pixels differ by ${maxDiff}`);
    const sizes = await Promise.all(
      ['f32', 'f16'].map(async (d) => (await readFile(join(dir, d, 'weights.bin'))).length),
    );
    assert.equal(sizes[1] * 2, sizes[0]);
    [f32, f16].forEach((s) => s.dispose());
    disposeModel(model);
  });

  test('a save or an export replaces only checkpoint files (no D, no optimizer in an export); other files stay', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ganvas-export-'));
    const model = buildModel(tinyConfig(32), 10, true);
    const opt = { g: new Adam(model.generator.params.trainable) };
    await saveCheckpoint(
      join(dir, 'run'),
      model,
      { steps: { text: 1, gan: 2, style: 3 }, wallSeconds: { text: 1, gan: 2, style: 3 } },
      { optimizers: opt },
    );
    await mkdir(join(dir, 'shipped', 'eval'), { recursive: true });
    await writeFile(join(dir, 'shipped', 'MODEL_CARD.md'), '# card\n');
    await writeFile(join(dir, 'shipped', 'eval', 'report.md'), '# report\n');
    await exportCheckpoint(join(dir, 'run'), join(dir, 'shipped'));
    assert.deepEqual((await readdir(join(dir, 'shipped'))).sort(), [
      'MODEL_CARD.md',
      'checkpoint.json',
      'eval',
      'weights.bin',
      'weights.json',
    ]);
    assert.equal(await readFile(join(dir, 'shipped', 'MODEL_CARD.md'), 'utf8'), '# card\n');
    assert.deepEqual((await readCheckpointMeta(join(dir, 'shipped'))).wallSeconds, { text: 1, gan: 2, style: 3 });
    // a run's next save keeps what was written beside its checkpoint (`npm run eval -- RUN/checkpoint` writes eval/)
    await mkdir(join(dir, 'run', 'eval'));
    await writeFile(join(dir, 'run', 'eval', 'report.md'), '# report\n');
    await saveCheckpoint(join(dir, 'run'), model, { steps: { text: 1, gan: 3, style: 3 } }, { optimizers: opt });
    assert.equal(await readFile(join(dir, 'run', 'eval', 'report.md'), 'utf8'), '# report\n');
    assert.equal((await readCheckpointMeta(join(dir, 'run'))).steps.gan, 3);
    // an inference checkpoint saved over a training one leaves no optimizer state behind
    await exportCheckpoint(join(dir, 'run'), join(dir, 'run'));
    assert.deepEqual((await readdir(join(dir, 'run'))).sort(), [
      'checkpoint.json',
      'eval',
      'weights.bin',
      'weights.json',
    ]);
    // a training run's folder given for its checkpoint: the message names the checkpoint, not model:init (which
    // would have replaced the run's files)
    await exportCheckpoint(join(dir, 'run'), join(dir, 'training', 'checkpoint'));
    await assert.rejects(readCheckpointMeta(join(dir, 'training')), /it is a training run, its checkpoint is/);
    // weights.json is a TensorFlow.js weights manifest: tf.io.decodeWeights reads the float16 file as our loader does
    const manifest = JSON.parse(
      await readFile(join(dir, 'shipped', 'weights.json'), 'utf8'),
    ) as tf.io.WeightsManifestConfig;
    assert.deepEqual(manifest[0].paths, ['weights.bin']);
    const names = manifest[0].weights;
    assert.deepEqual([...new Set(names.map((w) => w.name.split('/')[0]))].sort(), ['generator', 'style', 'text']);
    assert.ok(names.every((w) => w.dtype === 'float32' && w.quantization?.dtype === 'float16'));
    const bin = await readFile(join(dir, 'shipped', 'weights.bin'));
    const decoded = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), names);
    const ours = await readTensors(
      join(dir, 'shipped', 'weights.bin'),
      fromTfjsManifest(manifest as TfjsWeightsGroup[]),
    );
    assert.equal(Object.keys(decoded).length, ours.size);
    for (const [name, values] of ours) assert.deepEqual(decoded[name].dataSync(), values, name);
    tf.dispose(Object.values(decoded));
    const loaded = await Synthesizer.load(join(dir, 'shipped'));
    loaded.dispose();
    disposeModel(model);
  });

  test('training resumes exactly (recoloured wrong texts and colour balance too): stopped after 2 GAN steps and resumed equals the run straight through', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ganvas-resume-'));
    await generateFlowers({ out: join(root, 'data'), images: 24, size: 38, seed: 1, species: 6, testSpecies: 2 });
    const options = (out: string, steps: { text: number; gan: number; style: number }) =>
      tinyRun(join(root, 'data'), out, {
        steps,
        diversity: 0.5,
        seed: 5,
        standingStats: 2,
        hardNegatives: 0.5,
        colourBalance: 0.5,
      });
    const all = { text: 4, gan: 4, style: 4 };
    await train(options(join(root, 'straight'), all));
    await train(options(join(root, 'resumed'), { text: 4, gan: 2, style: 0 }));
    await train(options(join(root, 'resumed'), all));
    const a = await loadCheckpoint(join(root, 'straight', 'checkpoint'), true);
    const b = await loadCheckpoint(join(root, 'resumed', 'checkpoint'), true);
    assert.deepEqual(b.meta.steps, { text: 4, gan: 4, style: 4 });
    assert.deepEqual(snapshot(b.model), snapshot(a.model));
    assert.equal(b.optimizers.get('g')!.step, 4);
    assert.deepEqual(b.optimizers.get('d')!.m, a.optimizers.get('d')!.m);
    disposeModel(a.model);
    disposeModel(b.model);
  });

  test('standing statistics replace the batch-norm statistics the moving average copied from G', async () => {
    const { run, checkpoint } = await tinyRuns('ganvas-standing-');
    /** Whether the served G (the moving average) has G's batch-norm statistics after a run. */
    const copied = async (name: string, standingStats: number) => {
      await run(name, { standingStats });
      const { model } = await loadCheckpoint(checkpoint(name), true, true);
      const norms = [...model.generator.params.stats].filter(([n]) => n.includes('.bn.'));
      assert.ok(norms.length > 0);
      const same = norms.every(([n, v]) => tf.equal(v, model.ema!.params.stats.get(n)!).all().dataSync()[0] === 1);
      disposeModel(model);
      return same;
    };
    assert.equal(await copied('copied', 0), true);
    assert.equal(await copied('standing', 2), false);
  });

  test("the run's noise scale: standing statistics and S are made at it, the GAN is not; refused once S trained at another", async () => {
    const { run, checkpoint } = await tinyRuns('ganvas-noise-run-');
    await run('one', {});
    await run('wide', { noiseScale: 1.5 });
    const one = await loadCheckpoint(checkpoint('one'), true, true);
    const wide = await loadCheckpoint(checkpoint('wide'), true, true);
    assert.equal(one.model.config.noiseScale, 1);
    assert.equal(wide.model.config.noiseScale, 1.5);
    assertServedNoiseOnly(one.model, wide.model);
    [one, wide].forEach((c) => disposeModel(c.model));

    // set when a finished GAN run resumes for its style stage: the same model as the run made at the scale throughout
    const gan = { text: 2, gan: 2, style: 0 };
    await run('staged', { steps: gan });
    await assert.rejects(run('staged', { noiseScale: 1.5, stages: ['text', 'gan'] }), /run the style stage too/);
    await assert.rejects(run('staged', { noiseScale: 1.5, standingStats: 0 }), /give --standing-stats 2/);
    await run('staged', { noiseScale: 1.5 });
    const staged = await loadCheckpoint(checkpoint('staged'), true, true);
    const again = await loadCheckpoint(checkpoint('wide'), true, true);
    const all = (m: Model) =>
      new Map([...networkParams(m)].flatMap(([net, p]) => [...p.all()].map(([n, v]) => [`${net}/${n}`, v.dataSync()])));
    assert.deepEqual(all(staged.model), all(again.model));
    assert.equal(staged.model.config.noiseScale, 1.5);
    [staged, again].forEach((c) => disposeModel(c.model));

    await assert.rejects(run('wide', { noiseScale: 2 }), /style encoder has trained at noise scale 1.5/);
    // a resume with another recipe or architecture is refused (they were ignored; without --ema the average went)
    await assert.rejects(
      run('wide', { ema: 0, diversity: 1, model: { ...tinyConfig(32), ngf: 16 } }),
      /was trained with --diversity 0 \(this command: 1\), --ema 0.9 \(this command: 0\), --ngf 4 \(this command: 16\)/,
    );
    // nor may the caption encoder train on under a trained generator (G reads its embeddings)
    await assert.rejects(
      run('wide', { steps: { text: 3, gan: 2, style: 2 } }),
      /generator trained on its caption encoder \(2 GAN steps\).*keep --text-steps 2/,
    );
    // nor the generator under a trained style encoder (S inverts it; its standing statistics were made once)
    await assert.rejects(
      run('wide', { steps: { text: 2, gan: 3, style: 2 } }),
      /style encoder trained on its generator \(\d+ style steps\).*keep --gan-steps 2/,
    );
    await run('wide', { steps: { text: 2, gan: 2, style: 2 } }); // resumed without a scale: the checkpoint's
    const resumed = await loadCheckpoint(checkpoint('wide'), true, true);
    assert.equal(resumed.model.config.noiseScale, 1.5);
    assert.equal(resumed.meta.training?.noiseScale, 1.5); // what model:export compares a relabelling with
    assert.equal(resumed.model.config.conditioningGain, 1); // the paper's conditioning: no mean to gain about
    assert.equal(resumed.meta.steps.style, 2);
    disposeModel(resumed.model);
  });

  test("the run's conditioning noise: made and recorded as the noise scale is; refused without augmented conditioning", async () => {
    const { run, checkpoint } = await tinyRuns('ganvas-cond-run-', {
      model: { ...tinyConfig(32), conditioning: 'augmented' },
    });
    await assert.rejects(
      run('paper', { model: tinyConfig(32), conditioningNoise: 1 }),
      /--conditioning-noise 1: needs --conditioning augmented \(this run's is paper\)/,
    );
    await run('mu', {});
    await run('sampled', { conditioningNoise: 1 });
    const mu = await loadCheckpoint(checkpoint('mu'), true, true);
    const sampled = await loadCheckpoint(checkpoint('sampled'), true, true);
    assert.equal(mu.model.config.conditioningNoise, 0);
    assert.equal(sampled.model.config.conditioningNoise, 1);
    // served captions at the training inputs' distance from the mean (the paper's G: no mean, phi as it is)
    const gain = mu.model.config.conditioningGain;
    assert.ok(gain > 0.3 && gain < 1, String(gain));
    assert.equal(sampled.meta.training?.conditioningNoise, 1);
    assertServedNoiseOnly(mu.model, sampled.model);
    [mu, sampled].forEach((c) => disposeModel(c.model));
    await assert.rejects(
      run('sampled', { conditioningNoise: 0.5 }),
      /style encoder has trained at conditioning noise 1/,
    );
  });

  test('a short run lowers the DS-SJE loss and keeps GAN losses finite', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ganvas-short-'));
    await generateFlowers({ out: join(root, 'data'), images: 48, size: 38, seed: 2, species: 8, testSpecies: 2 });
    await train(
      tinyRun(join(root, 'data'), join(root, 'run'), {
        stages: ['text', 'gan'],
        steps: { text: 60, gan: 20, style: 0 },
        batch: 6,
        lr: 1e-3,
        sampleEvery: 20,
        standingStats: 2,
      }),
    );
    const log = (await readFile(join(root, 'run', 'log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const sje = log.filter((l) => l.stage === 'text').map((l) => l.sje as number);
    assert.ok(sje.at(-1)! < sje[0], `DS-SJE loss went ${sje.join(' -> ')}`);
    const gan = log.filter((l) => l.stage === 'gan');
    assert.ok(gan.length > 0 && gan.every((l) => Number.isFinite(l.d) && Number.isFinite(l.g)));
    await readFile(join(root, 'run', 'samples', 'gan_000020.png')); // the sample sheet was written
  });
});

describe('text encoder', () => {
  test('phi of a caption and its gradients are the same alone (convolutions over its length) and beside a full-length one', () => {
    const cfg = tinyConfig();
    const text = buildTextEncoder({ ...cfg, text: { ...cfg.text, maxLength: 201 } }, new Rng(3));
    const ids = (captions: string[]) =>
      tf.tensor2d(
        captions.flatMap((c) => [...encodeCaption(c, cfg.text.alphabet, 201)]),
        [captions.length, 201],
        'int32',
      );
    const first = (captions: string[]) => () =>
      tf.tidy(
        () =>
          text
            .forward(ids(captions))
            .slice([0, 0], [1, cfg.embedDim])
            .mul(tf.range(1, cfg.embedDim + 1))
            .sum() as tf.Scalar,
      );
    // 6 characters (one step of characters); 12; 18 and 19 (a step's window starts at every 9th character). Beside
    // a full-length caption no step is padding only; beside a short one the padding steps' row is shared by two
    for (const caption of ['a rose', 'a red flower', 'x'.repeat(18), 'y'.repeat(19)]) {
      const [alone, ...others] = [[caption], [caption, 'z'.repeat(201)], [caption, 'ab']].map((captions) =>
        tf.variableGrads(first(captions), [...text.params.trainable.values()]),
      );
      for (const beside of others) {
        assert.ok(Math.abs(alone.value.dataSync()[0] - beside.value.dataSync()[0]) < 1e-4, caption);
        for (const [name, g] of Object.entries(alone.grads)) {
          // to float rounding: the untrained embedding is normalised from a norm near 1e-5, so gradients reach 1e8
          const other = beside.grads[name].dataSync();
          const scale = Math.max(...other.map(Math.abs));
          assert.ok(
            g.dataSync().every((v, i) => Math.abs(v - other[i]) < 1e-4 * (1 + scale * 1e-2)),
            `${caption}: gradient of ${name} differs`,
          );
        }
      }
      tf.dispose([alone, ...others].flatMap((r) => [r.value, ...Object.values(r.grads)]));
    }
    text.params.dispose();
  });

  test('equal captions give equal embeddings; empty, emoji and very long captions work', () => {
    const model = buildModel(tinyConfig(32), 6, false);
    const s = Synthesizer.fromModel(model, {
      format: 'ganvas-checkpoint',
      version: 1,
      model: model.config,
      createdAt: '',
      steps: { text: 0, gan: 0, style: 0 },
    });
    const [a, b, c, empty, emoji, long] = s.embed([
      'a red flower',
      'a red flower',
      'A RED FLOWER',
      '   ',
      'a 🌸 flower 🌼🌼',
      'petals '.repeat(2000),
    ]);
    assert.deepEqual(a, b);
    assert.deepEqual(a, c); // captions are lower-cased
    for (const v of [empty, emoji, long]) assert.ok(v.every(Number.isFinite));
    assert.notDeepEqual(a, emoji);
    disposeModel(model);
  });
});
