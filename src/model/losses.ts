/**
 * The paper's objectives (docs/method.md §CLS §INT, DS-SJE: §phi). Discriminator outputs are logits;
 * log-sigmoid terms are written as binary cross-entropy with logits, the same quantity computed stably.
 */
import * as tf from '@tensorflow/tfjs-core';

export const VARIANTS = ['gan', 'gan-cls', 'gan-int', 'gan-int-cls'] as const;
export type Variant = (typeof VARIANTS)[number];

/**
 * The adversarial objective: `bce` is the paper's (cross-entropy on logits, G non-saturating); `hinge`
 * (Lim & Ye 2017, used by SAGAN and BigGAN) gives D zero gradient on examples it already gets right by a
 * margin, which keeps it from running away from G on a small data set.
 */
export const ADVERSARIAL_LOSSES = ['bce', 'hinge'] as const;
export type AdversarialLoss = (typeof ADVERSARIAL_LOSSES)[number];

export const usesWrongText = (v: Variant): boolean => v === 'gan-cls' || v === 'gan-int-cls';
export const usesInterpolation = (v: Variant): boolean => v === 'gan-int' || v === 'gan-int-cls';

/** mean over the batch of -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]. */
export function bceWithLogits(logits: tf.Tensor1D, target: 0 | 1): tf.Scalar {
  // max(x, 0) - x*y + log(1 + exp(-|x|))
  const x = logits;
  const loss = tf.add(tf.sub(tf.relu(x), target === 1 ? x : tf.zerosLike(x)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
  return tf.mean(loss);
}

export interface DiscriminatorTerms {
  real: tf.Scalar;
  wrong: tf.Scalar | null;
  fake: tf.Scalar;
}

/** mean(max(0, 1 - x)) for a target of 1 (real), mean(max(0, 1 + x)) for 0 (fake or mismatched). */
export function hingeLoss(logits: tf.Tensor1D, target: 0 | 1): tf.Scalar {
  return tf.mean(tf.relu(target === 1 ? tf.sub(1, logits) : tf.add(1, logits))) as tf.Scalar;
}

/** D's loss from its logits: GAN-CLS weighs real/right 1, real/wrong 1/2, fake/right 1/2 (Algorithm 1). */
export function discriminatorLoss(
  sReal: tf.Tensor1D,
  sWrong: tf.Tensor1D | null,
  sFake: tf.Tensor1D,
  objective: AdversarialLoss = 'bce',
): { total: tf.Scalar; terms: DiscriminatorTerms } {
  const term = objective === 'hinge' ? hingeLoss : bceWithLogits;
  const real = term(sReal, 1);
  const fake = term(sFake, 0);
  if (!sWrong) return { total: tf.add(real, fake), terms: { real, wrong: null, fake } };
  const wrong = term(sWrong, 0);
  return { total: tf.add(real, tf.mul(0.5, tf.add(wrong, fake))), terms: { real, wrong, fake } };
}

/**
 * G's non-saturating loss (hinge: -mean D(G(z))); GAN-INT adds the same term on interpolated captions with weight 1.
 */
export function generatorLoss(
  sFake: tf.Tensor1D,
  sInterpolated: tf.Tensor1D | null,
  objective: AdversarialLoss = 'bce',
): { total: tf.Scalar; fake: tf.Scalar; interpolated: tf.Scalar | null } {
  const term = (x: tf.Tensor1D): tf.Scalar =>
    objective === 'hinge' ? (tf.neg(tf.mean(x)) as tf.Scalar) : bceWithLogits(x, 1);
  const fake = term(sFake);
  if (!sInterpolated) return { total: fake, fake, interpolated: null };
  const interpolated = term(sInterpolated);
  return { total: tf.add(fake, interpolated), fake, interpolated };
}

/**
 * DS-SJE (Reed et al. 2016b) on a batch of B image features and B caption features of B distinct
 * classes: for each image, hinge on every other class's caption scoring within a margin of its own, and
 * symmetrically for each caption. Compatibility is the inner product.
 */
export function dsSjeLoss(images: tf.Tensor2D, texts: tf.Tensor2D): tf.Scalar {
  const scores = compatibility(images, texts);
  return tf.add(rankingLoss(scores, 'image'), rankingLoss(scores, 'text'));
}

/** [B, B] inner products: image i with caption j. */
const compatibility = (images: tf.Tensor2D, texts: tf.Tensor2D): tf.Tensor2D => tf.matMul(images, texts, false, true);

/**
 * One side of DS-SJE's hinge over a batch's compatibility scores: each image ranks its own caption above the batch's
 * others by a margin of 1 (`image`), or each caption its own image (`text`); averaged over the B (B - 1) pairs.
 */
function rankingLoss(scores: tf.Tensor2D, side: 'image' | 'text'): tf.Scalar {
  const b = scores.shape[0];
  const own = tf.sum(tf.mul(scores, tf.eye(b)), 1); // [B]
  const margin = tf.sub(1, tf.eye(b));
  const against = side === 'image' ? own.reshape([b, 1]) : own.reshape([1, b]);
  return tf.div(tf.sum(tf.relu(tf.sub(tf.add(margin, scores), against))), b * Math.max(1, b - 1));
}

/**
 * G's caption-matching term (a ganvas addition, off unless --text-match > 0; the sentence-level form of AttnGAN's
 * DAMSM loss, Xu et al. 2018): the image side of DS-SJE's hinge, scored by the frozen image encoder phi was
 * pretrained against, on G's images and the captions they were drawn for. G is paid for images that encoder reads
 * as their own caption rather than the batch's others, colours and their parts included. Rows of one species count
 * as other captions (a batch is not split by class): about 2.5% of pairs at 32 rows of 40 species.
 */
export function textMatchLoss(imageEmbeddings: tf.Tensor2D, captions: tf.Tensor2D): tf.Scalar {
  return rankingLoss(compatibility(imageEmbeddings, captions), 'image');
}

/**
 * Mode seeking (Mao et al., CVPR 2019; a ganvas addition, off unless --diversity > 0): two images of the
 * same captions from different noise, 1 / (mean |G(z1,h) - G(z2,h)| / mean |z1 - z2| + eps). G minimises
 * it, which keeps it from ignoring z (one image per caption).
 */
export function modeSeekingLoss(
  images1: tf.Tensor4D,
  images2: tf.Tensor4D,
  z1: tf.Tensor2D,
  z2: tf.Tensor2D,
): tf.Scalar {
  const ratio = tf.div(tf.mean(tf.abs(tf.sub(images1, images2))), tf.mean(tf.abs(tf.sub(z1, z2))));
  return tf.div(1, tf.add(ratio, 1e-5));
}

/** L_style = E ||z - S(G(z, phi(t)))||^2 (section 4.4), averaged over the batch. */
export function styleLoss(z: tf.Tensor2D, recovered: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.sum(tf.square(tf.sub(z, recovered)), 1));
}

/** How sharply the attribute term's softmax tells cosines apart (cosines lie in [-1, 1]). */
const ATTRIBUTE_SHARPNESS = 10;

/**
 * The text stage's attribute term (a ganvas addition, off unless --text-attributes > 0): phi(t) of captions that name
 * the same value of an attribute (petal colour, centre colour...) gathered together, and apart from the other
 * values', read as the evaluation's phi probe reads them (docs/evaluation.md): centred on the batch's mean, in
 * cosine. For each attribute (a column of `labels` [B, A], a class index, -1 where the caption does not name it),
 * each caption's phi is scored against the mean direction of the other captions of each value in the batch, and the
 * term is the softmax cross-entropy of its own value, averaged over the rows that have one (a value some other row
 * names, and another value to tell it from). DS-SJE alone only asks phi to tell the training species apart, which a
 * species' whole caption can do; this asks it to keep each attribute word apart from the others, the parts an unseen
 * species recombines. Parameter-free: nothing is added to the model.
 */
export function attributeLoss(h: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar {
  const [rows, attributes] = labels.shape;
  const y = labels.dataSync();
  const depth = Math.max(0, ...y) + 1;
  // (a norm with its gradient finite at 0: a value no caption of the batch names sums to a zero row)
  const unit = (x: tf.Tensor): tf.Tensor2D => tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));
  const c = unit(tf.sub(h, tf.mean(h, 0, true)));
  const terms: tf.Scalar[] = [];
  let counted = 0;
  for (let a = 0; a < attributes; a++) {
    const column = Int32Array.from({ length: rows }, (_, i) => y[i * attributes + a]);
    const count = new Array<number>(depth).fill(0);
    for (const v of column) if (v >= 0) count[v]++;
    const present = count.filter((n) => n > 0).length;
    const valid = Array.from(column, (v): number => (v >= 0 && count[v] >= 2 && present >= 2 ? 1 : 0));
    const n = valid.reduce((s, v) => s + v, 0);
    if (n === 0) continue;
    const own = tf.oneHot(tf.tensor1d(column, 'int32'), depth).toFloat() as tf.Tensor2D; // [B, K], -1: a zero row
    const sums = tf.matMul(own, c, true, false); // [K, D]: each value's captions summed
    const others = tf.matMul(c, unit(sums), false, true); // [B, K]: cosine to each value's mean
    // [B, 1]: cosine to its own value's mean, less itself
    const self = tf.sum(tf.mul(c, unit(tf.sub(tf.matMul(own, sums), c))), 1, true);
    const cosine = tf.add(tf.mul(own, self), tf.mul(tf.sub(1, own), others));
    const absent = tf.tensor1d(count.map((k) => (k > 0 ? 0 : -1e9))).reshape([1, depth]);
    const logits = tf.add(tf.mul(cosine, ATTRIBUTE_SHARPNESS), absent);
    const ce = tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, own), 1)); // [B]
    terms.push(tf.sum(tf.mul(ce, tf.tensor1d(valid))));
    counted += n;
  }
  return counted === 0 ? tf.scalar(0) : tf.div(tf.addN(terms), counted);
}
