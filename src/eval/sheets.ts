/**
 * The PNG sheets of the evaluation, as in the paper's figures: samples per caption, caption interpolation
 * (fixed z, phi moving), noise interpolation (fixed caption, z moving), style transfer (S of a real image,
 * new captions).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePng, tile } from '../images/png.ts';
import { latentDim } from '../model/config.ts';
import { interpolate } from '../model/interpolation.ts';
import { Rng } from '../model/random.ts';
import type { Synthesizer } from '../model/synthesizer.ts';

const COLUMNS = 8;

async function write(
  dir: string,
  name: string,
  images: Uint8Array[],
  size: number,
  columns: number,
  note: string,
): Promise<string> {
  const t = tile(images, size, columns);
  await writeFile(join(dir, name), encodePng(t.rgb, t.width, t.height, { description: note }));
  return name;
}

/** Rows: captions; columns: 8 noise vectors (the same for every row). */
export async function samplesSheet(dir: string, synth: Synthesizer, captions: string[], seed: number): Promise<string> {
  const rng = new Rng(seed);
  const z = Array.from({ length: COLUMNS }, () => rng.normals(latentDim(synth.config)));
  const h = synth.embed(captions);
  const images = synth.draw(h.flatMap((hv) => z.map((zv) => ({ z: zv, h: hv }))));
  return write(dir, 'samples.png', images, synth.config.imageSize, COLUMNS, `rows: ${captions.join(' | ')}`);
}

/** Rows: caption pairs; columns: phi moving from the first caption to the second, one z per row. */
export async function captionInterpolationSheet(
  dir: string,
  synth: Synthesizer,
  pairs: [string, string][],
  seed: number,
): Promise<string> {
  const rng = new Rng(seed);
  const centre = synth.conditioningCentre;
  const items = pairs.flatMap(([a, b]) => {
    const [ha, hb] = synth.embed([a, b]);
    const z = rng.normals(latentDim(synth.config));
    return Array.from({ length: COLUMNS }, (_, k) => ({ z, h: interpolate(ha, hb, k / (COLUMNS - 1), centre) }));
  });
  return write(
    dir,
    'caption-interpolation.png',
    synth.draw(items),
    synth.config.imageSize,
    COLUMNS,
    `rows: ${pairs.map((p) => p.join(' -> ')).join(' | ')}`,
  );
}

/** Rows: captions; columns: z moving between two noise vectors, the caption fixed. */
export async function noiseInterpolationSheet(
  dir: string,
  synth: Synthesizer,
  captions: string[],
  seed: number,
): Promise<string> {
  const rng = new Rng(seed);
  const h = synth.embed(captions);
  const items = h.flatMap((hv) => {
    const z0 = rng.normals(latentDim(synth.config));
    const z1 = rng.normals(latentDim(synth.config));
    return Array.from({ length: COLUMNS }, (_, k) => ({ z: interpolate(z0, z1, k / (COLUMNS - 1)), h: hv }));
  });
  return write(
    dir,
    'noise-interpolation.png',
    synth.draw(items),
    synth.config.imageSize,
    COLUMNS,
    `rows: ${captions.join(' | ')}`,
  );
}

/** Rows: a real image (first column), then the new captions drawn with S(that image). */
export async function styleTransferSheet(
  dir: string,
  synth: Synthesizer,
  reals: Uint8Array[],
  captions: string[],
): Promise<string> {
  const styles = synth.styleOf(reals);
  const h = synth.embed(captions);
  const drawn = synth.draw(styles.flatMap((z) => h.map((hv) => ({ z, h: hv }))));
  const images = reals.flatMap((r, i) => [r, ...drawn.slice(i * captions.length, (i + 1) * captions.length)]);
  return write(
    dir,
    'style-transfer.png',
    images,
    synth.config.imageSize,
    captions.length + 1,
    `first column: real image; then: ${captions.join(' | ')}`,
  );
}
