/**
 * The version-2 recipe's parts on tiny shapes: resize-convolution, centred and augmented conditioning,
 * the hinge loss, D's translations (DiffAugment), the moving average of G and how checkpoints serve it, older
 * configs still loading.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/model/backend.ts';
import { exportCheckpoint, loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.ts';
import { CHECKPOINT_FORMAT, type CheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { type ModelConfig, latentDim, validateModelConfig } from '../src/model/config.ts';
import { ParamStore, batchNorm, channelSum, gridConv, leaky, resizeConv, tanh, upConv } from '../src/model/layers.ts';
import { discriminatorLoss, generatorLoss, hingeLoss } from '../src/model/losses.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { Rng, noiseForSeed } from '../src/model/random.ts';
import { Synthesizer } from '../src/model/synthesizer.ts';
import { standingStats, translate, updateEma } from '../src/train/steps.ts';
import { tinyConfig } from './support/model.ts';
import type { TfjsWeightsGroup } from '../src/model/tensor-file.ts';

before(async () => {
  await initBackend('wasm');
});

/** The reference: nearest-neighbour 2x by index arithmetic, then a 3x3 'same' convolution. */
function nearestThenConv(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const [b, h, wd, c] = x.shape;
  const rows = Array.from({ length: 2 * h }, (_, i) => Math.floor(i / 2));
  const cols = Array.from({ length: 2 * wd }, (_, i) => Math.floor(i / 2));
  const up = tf.gather(tf.gather(x, rows, 1), cols, 2).reshape([b, 2 * h, 2 * wd, c]) as tf.Tensor4D;
  return tf.conv2d(up, w, 1, 'same');
}

describe("D's translation (DiffAugment)", () => {
  // image 0 moves down a row, image 1 two columns left; zeros come in where the frame is empty
  const shifts = [1, 0, 0, -2];
  const moved = (x: number[][][][], i: number, y: number, c: number) => {
    const [dy, dx] = [shifts[2 * i], shifts[2 * i + 1]];
    const row = x[i][y - dy];
    return row?.[c - dx] ?? null;
  };

  test('moves each image by its own (dy, dx), filling with zeros', () => {
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 4 * 5 * 3 }, (_, k) => k + 1),
      [2, 4, 5, 3],
    );
    const y = translate(x, shifts);
    assert.deepEqual(y.shape, [2, 4, 5, 3]);
    const xs = x.arraySync();
    const ys = y.arraySync();
    for (let i = 0; i < 2; i++)
      for (let r = 0; r < 4; r++)
        for (let c = 0; c < 5; c++)
          assert.deepEqual(ys[i][r][c], moved(xs, i, r, c) ?? [0, 0, 0], `image ${i} (${r}, ${c})`);
    tf.dispose([x, y]);
  });

  test('passes gradients back to the pixels that stay in the frame, and nothing to those moved out', () => {
    tf.tidy(() => {
      const x = tf.tensor4d(new Rng(5).normals(2 * 4 * 5 * 3), [2, 4, 5, 3]);
      const target = tf.tensor4d(new Rng(6).normals(2 * 4 * 5 * 3), [2, 4, 5, 3]);
      const g = tf
        .grad((v: tf.Tensor) => tf.sum(tf.mul(translate(v as tf.Tensor4D, shifts), target)))(x)
        .arraySync() as number[][][][];
      const t = target.arraySync();
      // d/dx[i][r][c] is the target where that pixel lands: (r + dy, c + dx), or 0 when it leaves the frame
      for (let i = 0; i < 2; i++)
        for (let r = 0; r < 4; r++)
          for (let c = 0; c < 5; c++) {
            const landed = t[i][r + shifts[2 * i]]?.[c + shifts[2 * i + 1]] ?? [0, 0, 0];
            g[i][r][c].forEach((v, k) => assert.ok(Math.abs(v - landed[k]) < 1e-6, `image ${i} (${r}, ${c})`));
          }
    });
  });
});

describe('resize-convolution', () => {
  test('equals nearest 2x then a 3x3 convolution: shape, values and the weight gradient', () => {
    const p = new ParamStore(new Rng(1));
    const layer = resizeConv(p, 'up', 3, 5);
    const w = p.trainable.get('up.w')! as unknown as tf.Tensor4D;
    assert.deepEqual(w.shape, [3, 3, 3, 5]);
    tf.tidy(() => {
      const x = tf.tensor4d(new Rng(2).normals(2 * 5 * 7 * 3), [2, 5, 7, 3]);
      const y = layer(x);
      assert.deepEqual(y.shape, [2, 10, 14, 5]);
      assert.ok(tf.sub(y, nearestThenConv(x, w)).abs().max().dataSync()[0] < 1e-5);
      const target = tf.tensor4d(new Rng(3).normals(2 * 10 * 14 * 5), [2, 10, 14, 5]);
      const g1 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(resizeConvWith(x, v as tf.Tensor4D), target)))(w);
      const g2 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(nearestThenConv(x, v as tf.Tensor4D), target)))(w);
      assert.ok(tf.sub(g1, g2).abs().max().dataSync()[0] < 1e-3 * (tf.abs(g2).max().dataSync()[0] + 1));
    });
    p.dispose();
  });

  test('cannot draw a checkerboard: a flat input gives a flat output, whatever the weights', () => {
    const p = new ParamStore(new Rng(4));
    const layer = resizeConv(p, 'up', 2, 1);
    tf.tidy(() => {
      const inner = layer(tf.ones([1, 6, 6, 2]) as tf.Tensor4D)
        .slice([0, 2, 2, 0], [1, 8, 8, 1])
        .dataSync(); // away from the zero padding
      assert.ok(Math.max(...inner) - Math.min(...inner) < 1e-5);
    });
    p.dispose();
  });
});

test("D's text join: the same values and gradients as a 1x1 convolution of [x ; t tiled over the grid]", () => {
  const p = new ParamStore(new Rng(7));
  const layer = gridConv(p, 'joint', 6, 4, 5);
  const w = p.trainable.get('joint.w')!;
  assert.deepEqual(w.shape, [1, 1, 10, 5]);
  tf.tidy(() => {
    const x = tf.tensor4d(new Rng(8).normals(3 * 4 * 4 * 6), [3, 4, 4, 6]);
    const t = tf.tensor2d(new Rng(9).normals(3 * 4), [3, 4]);
    const target = tf.tensor4d(new Rng(10).normals(3 * 4 * 4 * 5), [3, 4, 4, 5]);
    const tiled = (xv: tf.Tensor, tv: tf.Tensor, wv: tf.Tensor) =>
      tf.conv2d(
        tf.concat([xv, tf.tile(tv.reshape([3, 1, 1, 4]), [1, 4, 4, 1])], 3) as tf.Tensor4D,
        wv as tf.Tensor4D,
        1,
        'valid',
      );
    const close = (a: tf.Tensor, b: tf.Tensor) =>
      assert.ok(tf.sub(a, b).abs().max().dataSync()[0] < 1e-5 * (tf.abs(b).max().dataSync()[0] + 1));
    close(layer(x, t), tiled(x, t, w));
    // gradients for the image features, the text and the kernel, through a loss that weighs every output
    const weighed = (y: tf.Tensor) => tf.sum(tf.mul(y, target));
    const mine = tf.grads((xv: tf.Tensor, tv: tf.Tensor) => weighed(layer(xv as tf.Tensor4D, tv as tf.Tensor2D)))([
      x,
      t,
    ]);
    const reference = tf.grads((xv: tf.Tensor, tv: tf.Tensor) => weighed(tiled(xv, tv, w)))([x, t]);
    close(mine[0], reference[0]);
    close(mine[1], reference[1]);
    const dw = tf.variableGrads(() => weighed(layer(x, t)) as tf.Scalar, [w]).grads[w.name];
    close(dw, tf.grad((wv: tf.Tensor) => weighed(tiled(x, t, wv)))(w));
  });
  p.dispose();
});

test("training-mode batch norm: the formula's values, gradients and running statistics, in fewer passes", () => {
  for (const shape of [
    [6, 3, 5, 4],
    [7, 4],
  ]) {
    const p = new ParamStore(new Rng(11));
    const bn = batchNorm(p, 'bn', 4);
    const [gamma, beta] = ['bn.gamma', 'bn.beta'].map((n) => p.trainable.get(n)!);
    beta.assign(tf.tensor1d([0.1, -0.2, 0.3, 0]));
    tf.tidy(() => {
      const size = shape.reduce((a, b) => a * b, 1);
      const x = tf.add(tf.tensor(new Rng(12).normals(size, 0, 3), shape), tf.tensor1d([2, -1, 0, 5]));
      const target = tf.tensor(new Rng(13).normals(size), shape);
      const axes = shape.slice(0, -1).map((_, i) => i);
      const formula = (xv: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(xv, axes);
        return tf.add(tf.mul(tf.div(tf.sub(xv, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
      };
      const weighed = (y: tf.Tensor) => tf.sum(tf.mul(y, target));
      const close = (a: tf.Tensor, b: tf.Tensor, what: string) =>
        assert.ok(tf.sub(a, b).abs().max().dataSync()[0] < 1e-4 * (tf.abs(b).max().dataSync()[0] + 1), what);
      close(bn(x, true), formula(x, gamma, beta), 'values');
      const mine = tf.variableGrads(() => weighed(bn(x, true)) as tf.Scalar, [gamma, beta]).grads;
      const [dxRef, dgRef, dbRef] = tf.grads((xv, g, b) => weighed(formula(xv, g, b)))([x, gamma, beta]);
      close(mine[gamma.name], dgRef, 'gamma');
      close(mine[beta.name], dbRef, 'beta');
      close(tf.grad((xv: tf.Tensor) => weighed(bn(xv, true)))(x), dxRef, 'x');
      // three training passes moved the running statistics a tenth of the way each time (the biased variance)
      const { mean, variance } = tf.moments(x, axes);
      close(p.stats.get('bn.mean')!, tf.mul(mean, 1 - 0.9 ** 3), 'running mean');
      close(p.stats.get('bn.var')!, tf.add(0.9 ** 3, tf.mul(variance, 1 - 0.9 ** 3)), 'running variance');
    });
    p.dispose();
  }
});

test("leaky ReLU, tanh and channelSum: tf.leakyRelu's values and gradient, tf.tanh's to rounding, tf.sum's sums", () => {
  tf.tidy(() => {
    const x = tf.tensor4d(new Rng(14).normals(3 * 4 * 5 * 6), [3, 4, 5, 6]);
    const target = tf.tensor4d(new Rng(15).normals(3 * 4 * 5 * 6), [3, 4, 5, 6]);
    const exact = (a: tf.Tensor, b: tf.Tensor) => assert.deepEqual(a.dataSync(), b.dataSync());
    exact(leaky(x), tf.leakyRelu(x, 0.2));
    const grad = (f: (v: tf.Tensor) => tf.Tensor) => tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), target)))(x);
    exact(
      grad((v) => leaky(v)),
      grad((v) => tf.leakyRelu(v, 0.2)),
    );
    const near = (a: tf.Tensor, b: tf.Tensor) =>
      assert.ok(tf.sub(a, b).abs().max().dataSync()[0] < 1e-6 * (1 + tf.abs(b).max().dataSync()[0]));
    const wide = tf.mul(x, 4); // into tanh's flat tails too
    near(tanh(wide), tf.tanh(wide));
    near(
      grad((v) => tanh(tf.mul(v, 4))),
      grad((v) => tf.tanh(tf.mul(v, 4))),
    );
    for (const t of [x, x.reshape([3, 20, 1, 6]), x.reshape([60, 1, 1, 6])]) {
      const sums = channelSum(t).dataSync();
      tf.sum(
        t,
        t.shape.slice(0, -1).map((_, i) => i),
      )
        .dataSync()
        .forEach((v, i) => assert.ok(Math.abs(v - sums[i]) < 1e-5 * (Math.abs(v) + 1), `${t.shape} channel ${i}`));
    }
  });
});

/** resizeConv with its weight replaced by `w` (for the gradient check). */
function resizeConvWith(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const taps = (t: tf.Tensor, axis: number) => {
    const [w0, w1, w2] = tf.split(t, 3, axis);
    return tf.concat([w2, tf.add(w1, w2), tf.add(w0, w1), w0], axis);
  };
  const [b, h, wd] = x.shape;
  return tf.conv2dTranspose(
    x,
    tf.transpose(taps(taps(w, 0), 1), [0, 1, 3, 2]) as tf.Tensor4D,
    [b, 2 * h, 2 * wd, w.shape[3]],
    2,
    'same',
  );
}

describe('conditioning', () => {
  test('centred conditioning reads (phi - mean) / scale: shifting phi by the mean changes nothing once the mean is stored', () => {
    const model = buildModel({ ...tinyConfig(32), conditioning: 'centred' }, 3, false);
    const { zDim, embedDim } = model.config;
    tf.tidy(() => {
      const z = tf.tensor2d(new Rng(5).normals(2 * zDim), [2, zDim]);
      const h = tf.tensor2d(new Rng(6).normals(2 * embedDim), [2, embedDim]);
      const before = model.generator.forward(z, h, false);
      const shift = tf.tensor1d(new Rng(7).normals(embedDim));
      model.generator.params.stats.get('cond.mean')!.assign(shift);
      const after = model.generator.forward(z, tf.add(h, shift) as tf.Tensor2D, false);
      assert.ok(tf.sub(before, after).abs().max().dataSync()[0] < 1e-4);
    });
    disposeModel(model);
  });

  test('augmented conditioning: noise moves the image, without it the code is the mean; KL is 0.5 mean(mu^2 + sigma^2 - 1 - log sigma^2)', () => {
    const model = buildModel({ ...tinyConfig(32), conditioning: 'augmented' }, 4, false);
    const { zDim, embedDim, projDim } = model.config;
    const G = model.generator;
    tf.tidy(() => {
      const z = tf.tensor2d(new Rng(5).normals(2 * zDim), [2, zDim]);
      const h = tf.tensor2d(new Rng(6).normals(2 * embedDim), [2, embedDim]);
      const eps = tf.tensor2d(new Rng(8).normals(2 * projDim), [2, projDim]);
      assert.ok(
        tf
          .sub(G.forward(z, h, true, eps), G.forward(z, h, true))
          .abs()
          .max()
          .dataSync()[0] > 0,
      );
      assert.deepEqual(G.forward(z, h, false, tf.zerosLike(eps)).dataSync(), G.forward(z, h, false).dataSync());
      assert.notDeepEqual(G.forward(z, h, false, eps).dataSync(), G.forward(z, h, false).dataSync());
      // with the projection's weights at 0, mu = 0 and log sigma^2 = 0: KL 0; with mu = 2 everywhere: 0.5 x 2^2
      for (const [name, v] of G.params.trainable) if (name.startsWith('proj.')) v.assign(tf.zerosLike(v));
      assert.ok(Math.abs(G.conditioningKl(h).dataSync()[0]) < 1e-7);
      const b = G.params.trainable.get('proj.b')!;
      b.assign(tf.concat([tf.fill([projDim], 2), tf.zeros([projDim])]));
      assert.ok(Math.abs(G.conditioningKl(h).dataSync()[0] - 0.5 * 4) < 1e-5);
    });
    disposeModel(model);
  });
});

describe('objective', () => {
  test('hinge: D pays max(0, 1 - real) + (max(0, 1 + wrong) + max(0, 1 + fake)) / 2; G pays -D(G(z))', () => {
    tf.tidy(() => {
      const v = (t: tf.Tensor) => t.dataSync()[0];
      const real = tf.tensor1d([2, 0]); // hinge terms 0 and 1 -> mean 0.5
      const wrong = tf.tensor1d([-2, 1]); // 0 and 2 -> 1
      const fake = tf.tensor1d([0, 0]); // 1 and 1 -> 1
      assert.equal(v(hingeLoss(real, 1)), 0.5);
      assert.equal(v(discriminatorLoss(real, wrong, fake, 'hinge').total), 0.5 + 0.5 * (1 + 1));
      assert.equal(v(generatorLoss(tf.tensor1d([1, 3]), tf.tensor1d([-1, -1]), 'hinge').total), -2 + 1);
    });
  });
});

describe('moving average of G', () => {
  test('ema = d ema + (1 - d) G with d = min(decay, (1 + t) / (10 + t)); statistics are copied', () => {
    const model = buildModel(tinyConfig(32), 5, true, true);
    const name = 'fc.w';
    const g = model.generator.params.trainable.get(name)!;
    const e = model.ema!.params.trainable.get(name)!;
    assert.deepEqual(e.dataSync(), g.dataSync()); // starts equal to G
    const before = e.dataSync().slice();
    g.assign(tf.add(g, 1));
    model.generator.params.stats
      .get('fc.bn.mean')!
      .assign(tf.fill([model.generator.params.stats.get('fc.bn.mean')!.shape[0]], 0.25));
    updateEma(model, 0.999, 0); // d = min(0.999, 1 / 10)
    const now = g.dataSync();
    e.dataSync().forEach((x, i) => assert.ok(Math.abs(x - (0.1 * before[i] + 0.9 * now[i])) < 1e-6));
    assert.ok(
      model
        .ema!.params.stats.get('fc.bn.mean')!
        .dataSync()
        .every((x) => x === 0.25),
    );
    const late = e.dataSync().slice();
    updateEma(model, 0.5, 1000); // d = decay once (1 + t) / (10 + t) passes it
    e.dataSync().forEach((x, i) => assert.ok(Math.abs(x - (0.5 * late[i] + 0.5 * now[i])) < 1e-6));
    disposeModel(model);
  });

  test('a checkpoint with a moving average serves it: inference loads it as G, and export ships it as the generator', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ganvas-ema-'));
    const model = buildModel(tinyConfig(32), 6, true, true);
    const e = model.ema!.params.trainable.get('fc.w')!;
    e.assign(tf.fill(e.shape, 0.5));
    await saveCheckpoint(join(dir, 'run'), model, { steps: { text: 0, gan: 1, style: 0 } });
    const served = await loadCheckpoint(join(dir, 'run'), false);
    assert.ok(
      served.model.generator.params.trainable
        .get('fc.w')!
        .dataSync()
        .every((x) => x === 0.5),
    );
    const resumed = await loadCheckpoint(join(dir, 'run'), true, true);
    assert.deepEqual(
      resumed.model.generator.params.trainable.get('fc.w')!.dataSync(),
      model.generator.params.trainable.get('fc.w')!.dataSync(),
    );
    await exportCheckpoint(join(dir, 'run'), join(dir, 'shipped'), 'float32');
    const names = (
      JSON.parse(await readFile(join(dir, 'shipped', 'weights.json'), 'utf8')) as TfjsWeightsGroup[]
    )[0].weights.map((w) => w.name);
    assert.ok(!names.some((n) => n.startsWith('ema/')));
    const shipped = await loadCheckpoint(join(dir, 'shipped'), false);
    assert.ok(
      shipped.model.generator.params.trainable
        .get('fc.w')!
        .dataSync()
        .every((x) => x === 0.5),
    );
    [model, served.model, resumed.model, shipped.model].forEach(disposeModel);
  });
});

describe('standing statistics', () => {
  const config = { ...tinyConfig(32), conditioning: 'augmented' as const };
  const batch = (seed: number) => {
    const rng = new Rng(seed);
    return () => ({
      z: tf.tensor2d(rng.normals(6 * config.zDim), [6, config.zDim]),
      h: tf.tensor2d(rng.normals(6 * config.embedDim), [6, config.embedDim]),
      eps: null,
    });
  };
  const stats = (g: ReturnType<typeof buildModel>['generator']) =>
    new Map([...g.params.stats].map(([n, v]) => [n, v.dataSync().slice()]));

  test('after one pass, inference draws that batch exactly as a training-mode pass does', () => {
    const g = buildModel(config, 7, false).generator;
    standingStats(g, 1, batch(1));
    tf.tidy(() => {
      const b = batch(1)();
      const inference = g.forward(b.z, b.h, false);
      const training = g.forward(b.z, b.h, true); // moves the statistics by 0.1 again: momentum is restored
      assert.ok(tf.sub(inference, training).abs().max().dataSync()[0] < 1e-4);
    });
    assert.equal(g.params.statsMomentum, 0.1);
    g.params.dispose();
  });

  test("the statistics are the mean of each pass's, and the conditioning constants are left alone", () => {
    const g = buildModel(config, 8, false).generator;
    g.params.stats.get('cond.mean')!.assign(tf.fill([config.embedDim], 0.5));
    const [one, two] = [batch(2), batch(3)];
    const perPass = [one, two].map((b) => {
      standingStats(g, 1, b);
      return stats(g);
    });
    const [again1, again2] = [batch(2), batch(3)];
    let k = 0;
    standingStats(g, 2, () => (k++ === 0 ? again1() : again2()));
    for (const [name, v] of stats(g)) {
      if (name.startsWith('cond.')) {
        assert.deepEqual(v, perPass[0].get(name));
        continue;
      }
      v.forEach((x, i) =>
        assert.ok(Math.abs(x - (perPass[0].get(name)![i] + perPass[1].get(name)![i]) / 2) < 1e-5, name),
      );
    }
    assert.ok(
      stats(g)
        .get('cond.mean')!
        .every((x) => x === 0.5),
    );
    g.params.dispose();
  });
});

test('a config written before upsampling, conditioning, the noise and the gain existed loads as the paper architecture', () => {
  const old = { ...tinyConfig(32) } as Partial<ReturnType<typeof tinyConfig>>;
  delete old.upsampling;
  delete old.conditioning;
  delete old.noiseScale;
  delete old.conditioningNoise;
  delete old.conditioningGain;
  const c = validateModelConfig(old as ReturnType<typeof tinyConfig>);
  assert.equal(c.upsampling, 'transposed');
  assert.equal(c.conditioning, 'paper');
  assert.equal(c.noiseScale, 1);
  assert.equal(c.conditioningNoise, 0);
  assert.equal(c.conditioningGain, 1);
  assert.equal(latentDim(c), c.zDim);
  assert.throws(() => validateModelConfig({ ...c, upsampling: 'bilinear' as never }), /upsampling must be one of/);
  for (const noiseScale of [0, -1, 5, NaN])
    assert.throws(() => validateModelConfig({ ...c, noiseScale }), /noiseScale must be above 0/);
});

test('the noise scale: a seed draws G(scale z); S(x) comes back in those units; export sets it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ganvas-noise-'));
  const model = buildModel(tinyConfig(32), 9, false);
  const meta = { steps: { text: 0, gan: 1, style: 0 } };
  await saveCheckpoint(join(dir, 'run'), model, meta);
  await exportCheckpoint(join(dir, 'run'), join(dir, 'wide'), 'float32', { noiseScale: 1.5 });
  const plain = await Synthesizer.load(join(dir, 'run'));
  const wide = await Synthesizer.load(join(dir, 'wide'));
  assert.equal(plain.config.noiseScale, 1);
  assert.equal(wide.config.noiseScale, 1.5);
  const rng = new Rng(10);
  const z = rng.normals(plain.config.zDim);
  const h = rng.normals(plain.config.embedDim);
  const [drawn] = wide.draw([{ z, h }]);
  assert.deepEqual(drawn, plain.draw([{ z: z.map((v) => 1.5 * v), h }])[0]);
  assert.notDeepEqual(drawn, plain.draw([{ z, h }])[0]);
  const [s1] = plain.styleOf([drawn]);
  const [s15] = wide.styleOf([drawn]);
  s15.forEach((v, i) => assert.ok(Math.abs(1.5 * v - s1[i]) < 1e-5));
  [plain, wide].forEach((s) => s.dispose());
  disposeModel(model);
});

/** The checkpoint record of a model whose GAN has trained (not labelled untrained). */
const trainedMeta = (model: ModelConfig): CheckpointMeta => ({
  format: CHECKPOINT_FORMAT,
  version: 1,
  model,
  steps: { text: 0, gan: 1, style: 0 },
  createdAt: '',
});

test("the conditioning noise: a seed's noise carries e after z; draw samples c = mu + s sigma e; S(x) draws at mu", () => {
  const config = { ...tinyConfig(32), conditioning: 'augmented' as const };
  assert.throws(() => validateModelConfig({ ...tinyConfig(32), conditioningNoise: 1 }), /needs conditioning augmented/);
  for (const conditioningNoise of [-1, 5, NaN])
    assert.throws(() => validateModelConfig({ ...config, conditioningNoise }), /conditioningNoise must be 0/);
  const meta = trainedMeta(config);
  const atMu = Synthesizer.fromModel(buildModel(config, 9, false), meta);
  const sampled = Synthesizer.fromModel(buildModel({ ...config, conditioningNoise: 1.5 }, 9, false), meta);
  assert.equal(latentDim(atMu.config), config.zDim);
  assert.equal(latentDim(sampled.config), config.zDim + config.projDim);
  const noise = noiseForSeed(4, latentDim(sampled.config));
  assert.deepEqual(noise.subarray(0, config.zDim), noiseForSeed(4, config.zDim)); // z is the seed's z either way
  const z = noise.slice(0, config.zDim);
  const h = new Rng(11).normals(config.embedDim);
  const [drawn] = sampled.draw([{ z: noise, h }]);
  const expected = tf.tidy(() => {
    const x = sampled.model.generator.forward(
      tf.tensor2d(z, [1, config.zDim]),
      tf.tensor2d(h, [1, config.embedDim]),
      false,
      tf.tensor2d(
        noise.slice(config.zDim).map((v) => 1.5 * v),
        [1, config.projDim],
      ),
    );
    return tf.clipByValue(tf.round(tf.mul(tf.add(x, 1), 127.5)), 0, 255).dataSync();
  });
  assert.deepEqual(drawn, Uint8Array.from(expected));
  // z alone (a style vector S(x)) draws at mu: what the model without conditioning noise draws
  const [centred] = sampled.draw([{ z, h }]);
  assert.deepEqual(centred, atMu.draw([{ z, h }])[0]);
  assert.notDeepEqual(drawn, centred);
  assert.throws(() => sampled.draw([{ z: noise.slice(1), h }]), /noise of length/);
  [atMu, sampled].forEach((s) => s.dispose());
});

test("the conditioning gain: G reads m + g (phi(t) - m) about the captions' mean; export relabels it", async () => {
  const config = { ...tinyConfig(32), conditioning: 'centred' as const };
  assert.throws(() => validateModelConfig({ ...tinyConfig(32), conditioningGain: 0.9 }), /needs conditioning centred/);
  for (const conditioningGain of [0, -1, 3, NaN])
    assert.throws(() => validateModelConfig({ ...config, conditioningGain }), /conditioningGain must be above 0/);
  const meta = trainedMeta(config);
  const model = buildModel(config, 9, false);
  const centre = new Rng(3).normals(config.embedDim);
  model.generator.params.stats.get('cond.mean')!.assign(tf.tensor1d(centre));
  const dir = await mkdtemp(join(tmpdir(), 'ganvas-gain-'));
  await saveCheckpoint(join(dir, 'run'), model, meta);
  await exportCheckpoint(join(dir, 'run'), join(dir, 'gained'), 'float32', { conditioningGain: 0.8 });
  const plain = await Synthesizer.load(join(dir, 'run'));
  const gained = await Synthesizer.load(join(dir, 'gained'));
  assert.equal(plain.config.conditioningGain, 1);
  assert.equal(gained.config.conditioningGain, 0.8);
  const z = noiseForSeed(4, config.zDim);
  const h = new Rng(11).normals(config.embedDim);
  const moved = h.map((v, d) => centre[d] + 0.8 * (v - centre[d]));
  assert.deepEqual(gained.draw([{ z, h }]), plain.draw([{ z, h: moved }]));
  assert.notDeepEqual(gained.draw([{ z, h }]), plain.draw([{ z, h }]));
  [plain, gained].forEach((s) => s.dispose());
  disposeModel(model);
});

test('inference folds the batch norm into the upsampling kernel, made once per set of weights', () => {
  for (const layer of [resizeConv, upConv]) {
    const p = new ParamStore(new Rng(4));
    const up = layer(p, 'up', 8, 6);
    const bn = batchNorm(p, 'bn', 6);
    tf.tidy(() => {
      p.stats.get('bn.mean')!.assign(tf.randomNormal([6], 0, 0.5, 'float32', 1));
      p.stats.get('bn.var')!.assign(tf.randomUniform([6], 0.3, 2, 'float32', 2));
      p.trainable.get('bn.beta')!.assign(tf.randomNormal([6], 0, 0.5, 'float32', 3));
    });
    const x = tf.randomNormal([3, 4, 4, 8], 0, 1, 'float32', 5) as tf.Tensor4D;
    const plain = tf.tidy(() => bn(up(x), false).dataSync());
    const folded = tf.tidy(() => up(x, { bn }).dataSync());
    plain.forEach((v, i) => assert.ok(Math.abs(v - folded[i]) < 1e-5, `${layer.name} ${i}: ${v} vs ${folded[i]}`));
    // made once: a second call allocates nothing that stays; new weights make it again, the old one freed
    const kept = tf.memory().numTensors;
    tf.tidy(() => {
      up(x, { bn });
    });
    assert.equal(tf.memory().numTensors, kept);
    tf.tidy(() => p.stats.get('bn.var')!.assign(tf.onesLike(p.stats.get('bn.var')!)));
    const expected = tf.tidy(() => bn(up(x), false).dataSync());
    // (the wasm kernel's phase filters of a freed filter go on its next call: this one)
    const again = tf.tidy(() => up(x, { bn }).dataSync());
    assert.notDeepEqual(again, folded);
    expected.forEach((v, i) => assert.ok(Math.abs(v - again[i]) < 1e-5));
    assert.equal(tf.memory().numTensors, kept);
    const before = tf.memory().numTensors;
    p.dispose(); // with what it derived
    assert.ok(tf.memory().numTensors < before - p.all().size);
    x.dispose();
  }
});
