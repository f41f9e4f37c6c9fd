/**
 * What each image of a generation is made from (the API's semantics): TEXT_TO_IMAGE image i uses
 * z(seed + i) and phi(caption); CAPTION_INTERPOLATION keeps z(seed) and mixes the two captions with
 * mix = i / (steps - 1); NOISE_INTERPOLATION keeps the caption and moves z from z(seed) to z(endSeed);
 * STYLE_TRANSFER draws caption i with z = S(source image) and the conditioning at its centre.
 */
import type { Generation } from '../db/generated/client.ts';
import { interpolate } from '../model/interpolation.ts';
import { noiseForSeed } from '../model/random.ts';

export interface ImagePlan {
  index: number;
  caption: string;
  seed: number;
  mix: number | null;
  /** a seed's noise (z, and e where the model samples its conditioning), or 'style' for S(source image) */
  z: Float32Array | 'style';
  /** the caption embedding: one caption, or two mixed */
  h: { caption: string } | { from: string; to: string; mix: number };
}

/** Int32 wrap-around, so seed + i stays a GraphQL Int. */
const seedAt = (seed: number, i: number) => (seed + i) | 0;

/** `noiseDim`: the model's latentDim, the length of a seed's noise. */
export function planImages(g: Generation, noiseDim: number, skip: Set<number>): ImagePlan[] {
  const plans: ImagePlan[] = [];
  for (let i = 0; i < g.imageCount; i++) {
    if (skip.has(i)) continue;
    if (g.kind === 'TEXT_TO_IMAGE') {
      const seed = seedAt(g.seed, i);
      plans.push({
        index: i,
        caption: g.captions[0],
        seed,
        mix: null,
        z: noiseForSeed(seed, noiseDim),
        h: { caption: g.captions[0] },
      });
    } else if (g.kind === 'CAPTION_INTERPOLATION') {
      const mix = g.imageCount === 1 ? 0 : i / (g.imageCount - 1);
      const [from, to] = g.captions;
      plans.push({
        index: i,
        caption: mix < 0.5 ? from : to,
        seed: g.seed,
        mix,
        z: noiseForSeed(g.seed, noiseDim),
        h: { from, to, mix },
      });
    } else if (g.kind === 'NOISE_INTERPOLATION') {
      const mix = g.imageCount === 1 ? 0 : i / (g.imageCount - 1);
      const z0 = noiseForSeed(g.seed, noiseDim);
      const z1 = noiseForSeed(g.endSeed ?? g.seed, noiseDim);
      plans.push({
        index: i,
        caption: g.captions[0],
        seed: g.seed,
        mix,
        z: interpolate(z0, z1, mix),
        h: { caption: g.captions[0] },
      });
    } else {
      plans.push({
        index: i,
        caption: g.captions[i],
        seed: g.seed,
        mix: null,
        z: 'style',
        h: { caption: g.captions[i] },
      });
    }
  }
  return plans;
}

/** phi of a plan, from the embeddings of its captions; `centre`: Synthesizer.conditioningCentre. */
export function embeddingOf(
  h: ImagePlan['h'],
  phi: Map<string, Float32Array>,
  centre: Float32Array | undefined,
): Float32Array {
  if ('caption' in h) return phi.get(h.caption)!;
  return interpolate(phi.get(h.from)!, phi.get(h.to)!, h.mix, centre);
}

export const captionsOf = (h: ImagePlan['h']): string[] => ('caption' in h ? [h.caption] : [h.from, h.to]);
