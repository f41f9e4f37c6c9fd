/**
 * Measures of what a person sees in a picture, on RGB bytes (size x size x 3): high-frequency artefact
 * energy (checkerboard and grain), the share of an image that is foreground (not background), the
 * background's colour, and the spread of a set of feature vectors.
 */

/**
 * Mean squared response of the 2x2 filter [[1, -1], [-1, 1]] / 2 over every pixel and channel, values in
 * [0, 1]. Flat regions, linear gradients and straight edges give 0; a one-pixel checkerboard (the stride-2
 * transposed convolution's artefact) gives its full power, and per-pixel grain most of it.
 */
export function artefactEnergy(image: Uint8Array, size: number): number {
  let sum = 0;
  for (let y = 0; y + 1 < size; y++)
    for (let x = 0; x + 1 < size; x++)
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number) => image[(yy * size + xx) * 3 + c] / 255;
        const r = (at(y, x) - at(y, x + 1) - at(y + 1, x) + at(y + 1, x + 1)) / 2;
        sum += r * r;
      }
  return sum / ((size - 1) * (size - 1) * 3);
}

/** The background colour: the per-channel median of the one-pixel border. */
export function backgroundColour(image: Uint8Array, size: number): [number, number, number] {
  const border: number[][] = [[], [], []];
  for (let i = 0; i < size; i++)
    for (const [y, x] of [
      [0, i],
      [size - 1, i],
      [i, 0],
      [i, size - 1],
    ])
      for (let c = 0; c < 3; c++) border[c].push(image[(y * size + x) * 3 + c]);
  const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  return [median(border[0]), median(border[1]), median(border[2])];
}

/**
 * Distance in RGB (0-255 per channel) beyond which a pixel is not background; the data set's backgrounds jitter by
 * +-10.
 */
const FOREGROUND_DISTANCE = 48;

/** Share of pixels whose colour is further than FOREGROUND_DISTANCE from the background colour. */
export function foregroundShare(image: Uint8Array, size: number): number {
  const bg = backgroundColour(image, size);
  let n = 0;
  for (let i = 0; i < size * size; i++) {
    const d = Math.hypot(image[i * 3] - bg[0], image[i * 3 + 1] - bg[1], image[i * 3 + 2] - bg[2]);
    if (d > FOREGROUND_DISTANCE) n++;
  }
  return n / (size * size);
}

/** Mean Euclidean distance over all pairs of vectors (0 for fewer than two). */
export function meanPairwiseDistance(vectors: Float32Array[]): number {
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < vectors.length; i++)
    for (let j = i + 1; j < vectors.length; j++) {
      let d = 0;
      for (let k = 0; k < vectors[i].length; k++) d += (vectors[i][k] - vectors[j][k]) ** 2;
      sum += Math.sqrt(d);
      pairs++;
    }
  return pairs ? sum / pairs : 0;
}

export const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
