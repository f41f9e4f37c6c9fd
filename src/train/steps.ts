/**
 * One function per training step, as in Algorithm 1: the DS-SJE step that pretrains phi, the
 * discriminator step, the generator step, and the style encoder step. Each returns its losses as numbers.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Adam } from '../model/adam.ts';
import { type Variant, discriminatorLoss, dsSjeLoss, generatorLoss, modeSeekingLoss, styleLoss, usesInterpolation, usesWrongText } from '../model/losses.ts';
import type { Model } from '../model/model.ts';

export interface GanBatch {
  real: tf.Tensor4D; // [B, S, S, 3] in [-1, 1]
  h: tf.Tensor2D; // phi(t) of each image's captions
  hWrong: tf.Tensor2D; // phi(t) of captions from another class
  z: tf.Tensor2D;
  /** Interpolated captions (1/2 phi(t1) + 1/2 phi(t2)) and their noise, B/2 of them: GAN-INT only. */
  hInt: tf.Tensor2D | null;
  zInt: tf.Tensor2D | null;
  /** Second noise for the first B/2 captions: the mode-seeking term only (--diversity > 0). */
  zPair: tf.Tensor2D | null;
}

export function textStep(model: Model, opt: Adam, images: tf.Tensor4D, ids: tf.Tensor2D): { sje: number } {
  const sje = opt.minimize(() => dsSjeLoss(model.image!.forward(images, true), model.text.forward(ids)));
  return { sje };
}

/** Updates D only: BCE on real/right (1), real/wrong (1/2) and fake/right (1/2) for the CLS variants. */
export function discriminatorStep(model: Model, opt: Adam, b: GanBatch, variant: Variant): { d: number; dReal: number; dWrong: number; dFake: number } {
  const D = model.discriminator!;
  const fake = tf.tidy(() => model.generator.forward(b.z, b.h, true));
  const terms = { dReal: 0, dWrong: 0, dFake: 0 };
  const d = opt.minimize(() => {
    const sReal = D.forward(b.real, b.h, true);
    const sWrong = usesWrongText(variant) ? D.forward(b.real, b.hWrong, true) : null;
    const sFake = D.forward(fake, b.h, true);
    const { total, terms: t } = discriminatorLoss(sReal, sWrong, sFake);
    terms.dReal = t.real.dataSync()[0];
    terms.dWrong = t.wrong ? t.wrong.dataSync()[0] : 0;
    terms.dFake = t.fake.dataSync()[0];
    return total;
  });
  fake.dispose();
  return { d, ...terms };
}

/**
 * Updates G only: non-saturating loss on fakes, plus on interpolated captions for the INT variants, plus
 * `diversity` x the mode-seeking term when the batch has a second noise (zPair) for its first captions.
 */
export function generatorStep(model: Model, opt: Adam, b: GanBatch, variant: Variant, diversity = 0): { g: number; gInt: number; ms: number } {
  const D = model.discriminator!;
  const interpolate = usesInterpolation(variant) && b.hInt !== null && b.zInt !== null;
  const pair = diversity > 0 && b.zPair !== null ? b.zPair : null;
  let gInt = 0;
  let ms = 0;
  const g = opt.minimize(() => {
    const n = b.z.shape[0];
    // one G pass over the matching captions, the interpolated ones and the paired noise together;
    // one D pass over the first two
    const z = tf.concat([b.z, ...(interpolate ? [b.zInt!] : []), ...(pair ? [pair] : [])]);
    const h = tf.concat([b.h, ...(interpolate ? [b.hInt!] : [])]);
    const m = pair ? pair.shape[0] : 0;
    const images = model.generator.forward(z, pair ? tf.concat([h, b.h.slice(0, m)]) : h, true);
    const scores = D.forward(pair ? images.slice(0, h.shape[0]) : images, h, true);
    const sFake = scores.slice(0, n);
    const sInt = interpolate ? scores.slice(n) : null;
    const loss = generatorLoss(sFake, sInt);
    gInt = loss.interpolated ? loss.interpolated.dataSync()[0] : 0;
    if (!pair) return loss.total;
    const seeking = modeSeekingLoss(images.slice(0, m), images.slice(h.shape[0]), b.z.slice(0, m), pair);
    ms = seeking.dataSync()[0];
    return tf.add(loss.total, tf.mul(diversity, seeking));
  });
  return { g, gInt, ms };
}

/** Trains S to invert the frozen G: L_style = ||z - S(G(z, h))||^2. */
export function styleStep(model: Model, opt: Adam, z: tf.Tensor2D, h: tf.Tensor2D): { style: number } {
  const images = tf.tidy(() => model.generator.forward(z, h, false));
  const style = opt.minimize(() => styleLoss(z, model.style.forward(images, true)));
  images.dispose();
  return { style };
}
