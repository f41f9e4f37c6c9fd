/**
 * GAN-INT-CLS's networks (docs/method.md §phi §G §D §S), read top to bottom in the order data flows through them:
 * the char-CNN-RNN text encoder phi, the generator G, the matching-aware discriminator D, the style
 * encoder S, and the image encoder that phi is pretrained against (DS-SJE). Each builder is a pure
 * function of the config and an Rng and returns the network's params and forward function.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type ModelConfig, gruSteps } from './config.ts';
import { ParamStore, batchNorm, conv, dense, gridConv, leaky, resizeConv, tanh, upConv } from './layers.ts';
import type { Rng } from './random.ts';

export interface Network<F> {
  params: ParamStore;
  forward: F;
}

/** Number of stride-2 stages between 4x4 and the image size (4 for 64x64). */
export function stages(imageSize: number): number {
  return Math.log2(imageSize / 4);
}

// ---------------------------------------------------------------- text encoder phi(t)

/** Character ids of a caption: lower-cased, cut at maxLength, unknown characters -> one id, -1 pads. */
export function encodeCaption(caption: string, alphabet: string, maxLength: number): Int32Array {
  const ids = new Int32Array(maxLength).fill(-1);
  const chars = [...caption.toLowerCase()].slice(0, maxLength);
  chars.forEach((ch, i) => {
    const k = alphabet.indexOf(ch);
    ids[i] = k >= 0 && ch.length === 1 ? k : alphabet.length;
  });
  return ids;
}

export type TextEncoder = Network<(ids: tf.Tensor2D) => tf.Tensor2D>;

/** Characters before the padding of the longest caption in `ids` ([B, L], -1 pads). */
function longestCaption(ids: tf.Tensor2D): number {
  const [batch, length] = ids.shape;
  const data = ids.dataSync();
  let longest = 0;
  for (let b = 0; b < batch; b++)
    for (let i = length - 1; i >= longest; i--)
      if (data[b * length + i] >= 0) {
        longest = i + 1;
        break;
      }
  return longest;
}

/**
 * ids [B, L] -> one-hot -> 3 x (conv k4 + ReLU), max-pool 3 after the first two -> GRU, outputs averaged -> linear ->
 * [B, embedDim], norm sqrt(embedDim).
 */
export function buildTextEncoder(cfg: ModelConfig, rng: Rng): TextEncoder {
  const p = new ParamStore(rng);
  const {
    alphabet,
    convChannels: [c1, c2, c3],
    gruUnits: h,
  } = cfg.text;
  const vocab = alphabet.length + 1;
  const convs = [
    conv(p, 'conv1', [1, 4], vocab, c1, 1, 'valid', true),
    conv(p, 'conv2', [1, 4], c1, c2, 1, 'valid', true),
    conv(p, 'conv3', [1, 4], c2, c3, 1, 'valid', true),
  ];
  const wx = p.normal('gru.wx', [c3, 3 * h], 0, 1 / Math.sqrt(c3));
  const wh = p.normal('gru.wh', [h, 3 * h], 0, 1 / Math.sqrt(h));
  const b = p.constant('gru.b', [3 * h], 0);
  const out = dense(p, 'out', h, cfg.embedDim);
  const pool = (x: tf.Tensor4D) => tf.maxPool(x, [1, 3], [1, 3], 'valid');

  /** chars [B, 1, L, vocab] -> [B, 1, T, c3]: step t reads characters 9t .. 9t + 47. */
  const body = (chars: tf.Tensor4D): tf.Tensor4D => {
    const x = pool(tf.relu(convs[0](chars))); // [B, 1, (L-3)/3, c1]
    return tf.relu(convs[2](pool(tf.relu(convs[1](x))))); // [B, 1, T, c3]
  };

  const forward = (ids: tf.Tensor2D): tf.Tensor2D => {
    const [batch, length] = ids.shape;
    const steps = gruSteps(length);
    // Padding (-1) is a zero one-hot, so a step that reads only padding has the same features in every caption:
    // the convolutions run over the batch's longest caption only, and one all-padding window gives the rest.
    const written = longestCaption(ids);
    const computed = Math.min(steps, Math.max(1, Math.ceil(written / 9)));
    const cut = 9 * (computed - 1) + 48;
    const oneHot = (t: tf.Tensor2D): tf.Tensor4D =>
      tf.oneHot(t, vocab).toFloat().reshape([t.shape[0], 1, t.shape[1], vocab]);
    // the input's part of the gates of every step at once, by step: [rows, 2h] (z and r) and [rows, h] (n); each
    // step then adds the state's part. The steps of padding only, the same in every caption, are computed once
    // (one row, added to every caption's state part)
    const gates = (chars: tf.Tensor2D): [tf.Tensor2D[], tf.Tensor2D[]] => {
      const x = body(oneHot(chars)); // [rows, 1, n, c3]
      const [rows, , n] = x.shape;
      const xw = tf.add(tf.matMul(x.reshape([rows * n, c3]), wx), b).reshape([rows, n, 3 * h]);
      // (a one-step unstack is a reshape: tfjs's unstack gradient fails on a single output)
      const byStep = (t: tf.Tensor3D): tf.Tensor2D[] =>
        n === 1 ? [t.reshape([rows, t.shape[2]])] : (tf.unstack(tf.transpose(t, [1, 0, 2])) as tf.Tensor2D[]);
      const [zr, nn] = tf.split(xw, [2 * h, h], 2) as tf.Tensor3D[];
      return [byStep(zr), byStep(nn)];
    };
    const [xzr, xn] = gates(computed === steps ? ids : ids.slice([0, 0], [batch, cut]));
    const [padZr, padN] = computed < steps ? gates(tf.fill([1, 48], -1, 'int32')) : [[], []];
    let state = tf.zeros([batch, h]) as tf.Tensor2D;
    const states: tf.Tensor2D[] = [];
    for (let t = 0; t < steps; t++) {
      const [hzr, hn] = tf.split(tf.matMul(state, wh), [2 * h, h], 1);
      const [z, r] = tf.split(tf.sigmoid(tf.add(xzr[t] ?? padZr[0], hzr)), 2, 1);
      const n = tf.tanh(tf.add(xn[t] ?? padN[0], tf.mul(r, hn)));
      state = tf.add(n, tf.mul(z, tf.sub(state, n))); // (1 - z) n + z state
      states.push(state);
    }
    const sum = tf.addN(states);
    // fixed norm sqrt(embedDim) (entries ~unit scale): DS-SJE's score is an inner product, so without it
    // the image side can grow while phi(t) shrinks towards 0, which starves G and D of the caption
    const e = out(tf.div(sum, steps)); // [B, embedDim]
    return tf.mul(tf.div(e, tf.add(tf.norm(e, 2, 1, true), 1e-6)), Math.sqrt(cfg.embedDim));
  };
  return { params: p, forward };
}

// ---------------------------------------------------------------- shared conv body (D, S, image encoder)

/** image [B, S, S, 3] -> stride-2 conv 4x4 stages (width, 2 width, ...; LeakyReLU; BN from the 2nd) -> [B, 4, 4, C]. */
function convBody(
  p: ParamStore,
  cfg: ModelConfig,
  width: number,
): { forward: (x: tf.Tensor4D, training: boolean) => tf.Tensor4D; channels: number } {
  const n = stages(cfg.imageSize);
  const layers = Array.from({ length: n }, (_, i) => ({
    conv: conv(p, `down${i}`, 4, i === 0 ? 3 : width * 2 ** (i - 1), width * 2 ** i, 2, 'same'),
    bn: i === 0 ? null : batchNorm(p, `down${i}.bn`, width * 2 ** i),
  }));
  const forward = (x: tf.Tensor4D, training: boolean) =>
    layers.reduce((h, l) => {
      const y = l.conv(h);
      return leaky(l.bn ? l.bn(y, training) : y);
    }, x);
  return { forward, channels: width * 2 ** (n - 1) };
}

/** image [B, S, S, 3] -> [B, outDim]: the image encoder (for DS-SJE) and the style encoder S. */
export function imageToVector(
  cfg: ModelConfig,
  rng: Rng,
  outDim: number,
): Network<(x: tf.Tensor4D, training: boolean) => tf.Tensor2D> {
  const p = new ParamStore(rng);
  const body = convBody(p, cfg, cfg.nef);
  const head = dense(p, 'head', 16 * body.channels, outDim);
  return {
    params: p,
    forward: (x, training) => {
      const h = body.forward(x, training); // [B, 4, 4, C]
      return head(h.reshape([x.shape[0], 16 * body.channels]));
    },
  };
}

export type ImageEncoder = Network<(x: tf.Tensor4D, training: boolean) => tf.Tensor2D>;

export function buildImageEncoder(cfg: ModelConfig, rng: Rng): ImageEncoder {
  return imageToVector(cfg, rng, cfg.embedDim);
}

// ---------------------------------------------------------------- generator G(z, phi(t))

export interface Generator extends Network<
  (z: tf.Tensor2D, h: tf.Tensor2D, training: boolean, eps?: tf.Tensor2D) => tf.Tensor4D
> {
  /** StackGAN's KL(N(mu(h), sigma(h)) || N(0, I)), averaged over entries; 0 unless conditioning is `augmented`. */
  conditioningKl: (h: tf.Tensor2D) => tf.Scalar;
}

/**
 * phi -> conditioning (below) -> 128, concat z -> 4x4x(c0) -> stride-2 upsamplings (BN + ReLU) -> [B, S, S, 3] tanh.
 * Conditioning: `paper` Linear(128) + LReLU; `centred` the same on (phi - mean) / spread, the training
 * captions' statistics stored as `cond.*`; `augmented` centred, Linear(256) = [mu, log sigma^2], and the code
 * mu + sigma * eps given `eps` (StackGAN: training always, inference at the model's conditioningNoise), else mu.
 * Generator `affine`: after each batch norm, x (1 + gamma) + beta per channel, [gamma, beta] a linear map of the
 * code's 128 (weights start at 0, so G starts as the paper's).
 */
export function buildGenerator(cfg: ModelConfig, rng: Rng): Generator {
  const p = new ParamStore(rng);
  const n = stages(cfg.imageSize);
  const c0 = cfg.ngf * 2 ** (n - 1);
  const augmented = cfg.conditioning === 'augmented';
  const centred = cfg.conditioning !== 'paper';
  const condMean = centred ? p.constant('cond.mean', [cfg.embedDim], 0, false) : null;
  const condScale = centred ? p.constant('cond.scale', [1], 1, false) : null;
  const proj = dense(p, 'proj', cfg.embedDim, augmented ? 2 * cfg.projDim : cfg.projDim);
  const fc = dense(p, 'fc', cfg.zDim + cfg.projDim, 16 * c0, false);
  const bn0 = batchNorm(p, 'fc.bn', c0);
  const upLayer = cfg.upsampling === 'resize' ? resizeConv : upConv;
  const ups = Array.from({ length: n }, (_, i) => {
    const inC = cfg.ngf * 2 ** (n - 1 - i);
    const last = i === n - 1;
    const outC = last ? 3 : inC / 2;
    return { up: upLayer(p, `up${i}`, inC, outC), bn: last ? null : batchNorm(p, `up${i}.bn`, outC) };
  });
  // one per batch norm (fc.bn, then up0 .. up(n-2)): t [B, 128] -> scale and shift of x's channels
  const affines = Array.from({ length: cfg.generator === 'affine' ? n : 0 }, (_, i) => {
    const channels = i === 0 ? c0 : cfg.ngf * 2 ** (n - 1 - i);
    const w = p.constant(`affine${i}.w`, [cfg.projDim, 2 * channels], 0);
    const b = p.constant(`affine${i}.b`, [2 * channels], 0);
    return (x: tf.Tensor4D, t: tf.Tensor2D): tf.Tensor4D => {
      const [gamma, beta] = tf.split(tf.add(tf.matMul(t, w), b).reshape([t.shape[0], 1, 1, 2 * channels]), 2, 3);
      return tf.add(tf.mul(x, tf.add(gamma, 1)), beta);
    };
  });
  const modulate = (i: number, x: tf.Tensor4D, t: tf.Tensor2D): tf.Tensor4D => (affines[i] ? affines[i](x, t) : x);
  // [B, 128 or 256]
  const project = (h: tf.Tensor2D): tf.Tensor2D => proj(condMean ? tf.div(tf.sub(h, condMean), condScale!) : h);
  const conditioningKl = (h: tf.Tensor2D): tf.Scalar => {
    if (!augmented) return tf.scalar(0);
    const [mu, logVar] = tf.split(project(h), 2, 1);
    return tf.mul(0.5, tf.mean(tf.sub(tf.add(tf.square(mu), tf.exp(logVar)), tf.add(logVar, 1)))) as tf.Scalar;
  };
  const forward = (z: tf.Tensor2D, h: tf.Tensor2D, training: boolean, eps?: tf.Tensor2D): tf.Tensor4D => {
    const batch = z.shape[0];
    let c = project(h);
    if (augmented) {
      const [mu, logVar] = tf.split(c, 2, 1) as tf.Tensor2D[];
      c = eps ? (tf.add(mu, tf.mul(tf.exp(tf.mul(logVar, 0.5)), eps)) as tf.Tensor2D) : mu;
    }
    const t = leaky(c); // [B, 128]
    let x = fc(tf.concat([z, t], 1)).reshape([batch, 4, 4, c0]) as tf.Tensor4D; // [B, 4, 4, 8 ngf] at 64x64
    x = tf.relu(modulate(0, bn0(x, training), t));
    ups.forEach(({ up, bn }, i) => {
      // doubles the size: ... -> [B, S, S, 3]; in inference with its batch norm folded in
      const y = training ? (bn ? bn(up(x), true) : up(x)) : up(x, { bn });
      x = bn ? tf.relu(modulate(i + 1, y, t)) : tanh(y);
    });
    return x;
  };
  return { params: p, forward, conditioningKl };
}

// ---------------------------------------------------------------- discriminator D(x, phi(t))

export interface Discriminator extends Network<(x: tf.Tensor4D, h: tf.Tensor2D, training: boolean) => tf.Tensor1D> {
  /** The image half alone, [B, 4, 4, 8 ndf]: the D step scores real images with right and wrong text from one pass. */
  features: (x: tf.Tensor4D, training: boolean) => tf.Tensor4D;
  /** The text half and the joint layers on features of `features`: logit [B]. */
  score: (features: tf.Tensor4D, h: tf.Tensor2D, training: boolean) => tf.Tensor1D;
}

/**
 * conv body -> [B,4,4,8ndf]; phi -> Linear(128)+BN+LReLU tiled 4x4, concat -> 1x1 conv+BN+LReLU -> 4x4 valid conv ->
 * logit [B]. `projection` adds <mean of the features over the 4x4, W phi> to the logit (W: embedDim x 8ndf, no
 * bias; drawn small, so the term starts near 0 beside the paper's).
 */
export function buildDiscriminator(cfg: ModelConfig, rng: Rng): Discriminator {
  const p = new ParamStore(rng);
  const body = convBody(p, cfg, cfg.ndf);
  const proj = dense(p, 'proj', cfg.embedDim, cfg.projDim);
  const projBn = batchNorm(p, 'proj.bn', cfg.projDim);
  const joint = gridConv(p, 'joint', body.channels, cfg.projDim, body.channels);
  const jointBn = batchNorm(p, 'joint.bn', body.channels);
  const out = conv(p, 'out', 4, body.channels, 1, 1, 'valid', true);
  const inner =
    cfg.discriminator === 'projection'
      ? p.normal('inner.w', [cfg.embedDim, body.channels], 0, 1 / (cfg.embedDim * Math.sqrt(body.channels)))
      : null;
  const score = (img: tf.Tensor4D, h: tf.Tensor2D, training: boolean): tf.Tensor1D => {
    const t = leaky(projBn(proj(h), training)); // [B, 128]
    const y = leaky(jointBn(joint(img, t), training)); // as a 1x1 conv of [img ; t at each of the 4x4 positions]
    const logit = out(y).reshape([img.shape[0]]) as tf.Tensor1D; // [B]
    if (!inner) return logit;
    return tf.add(logit, tf.sum(tf.mul(tf.mean(img, [1, 2]), tf.matMul(h, inner)), 1)); // + <pooled img, W phi>
  };
  const forward = (x: tf.Tensor4D, h: tf.Tensor2D, training: boolean): tf.Tensor1D =>
    score(body.forward(x, training), h, training);
  return { params: p, forward, features: body.forward, score };
}

// ---------------------------------------------------------------- style encoder S(x)

export type StyleEncoder = Network<(x: tf.Tensor4D, training: boolean) => tf.Tensor2D>;

/** image -> z (section 4.4): trained after G so that S(G(z, phi(t))) recovers z. */
export function buildStyleEncoder(cfg: ModelConfig, rng: Rng): StyleEncoder {
  return imageToVector(cfg, rng, cfg.zDim);
}
