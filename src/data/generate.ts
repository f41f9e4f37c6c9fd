/**
 * The procedural flowers data set (`npm run data`, bin/data.ts), rendered in
 * Reed's layout (layout.ts), with styles.jsonl (per-image style), species.json (per-class attributes) and
 * heldout_captions.json (per class, captions phrased apart from the training grammar, for the evaluation).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from '../cli/progress.ts';
import { encodePng } from '../images/png.ts';
import { Rng } from '../model/random.ts';
import { captionsFor, drawStyle, heldOutCaptionsFor, makeSpecies, renderFlower } from './flowers.ts';
import { rgbaToRgb } from '../images/rgb.ts';

/** Per class, captions in wording the training grammar never uses (evaluation only). */
export const HELD_OUT_CAPTIONS = 'heldout_captions.json';

export interface GenerateOptions {
  out: string;
  images: number;
  size: number;
  seed: number;
  species?: number;
  testSpecies?: number;
  log?: (line: string) => void;
}

export async function generateFlowers(o: GenerateOptions): Promise<void> {
  if (o.images < 1) throw new Error('--images must be at least 1');
  if (o.size < 16 || o.size > 512) throw new Error('--size must be between 16 and 512');
  const rng = new Rng(o.seed);
  const { train, test } = makeSpecies(rng, o.species ?? 50, o.testSpecies ?? 10);
  const all = [...train, ...test];
  await mkdir(o.out, { recursive: true });
  await writeFile(join(o.out, 'trainvalclasses.txt'), train.map((s) => s.id).join('\n') + '\n');
  await writeFile(join(o.out, 'testclasses.txt'), test.map((s) => s.id).join('\n') + '\n');
  await writeFile(join(o.out, 'species.json'), JSON.stringify(all, null, 1) + '\n');
  // held-out phrasings for the evaluation, from their own stream so the training data stays as it was
  const heldOutRng = new Rng(o.seed + 1_000_003);
  await writeFile(
    join(o.out, HELD_OUT_CAPTIONS),
    JSON.stringify(Object.fromEntries(all.map((s) => [s.id, heldOutCaptionsFor(s, heldOutRng)])), null, 1) + '\n',
  );
  for (const s of all) {
    await mkdir(join(o.out, 'images', s.id), { recursive: true });
    await mkdir(join(o.out, 'text_c10', s.id), { recursive: true });
  }
  const styles: string[] = [];
  const progress = new Progress('data', o.images);
  for (let i = 0; i < o.images; i++) {
    const species = all[i % all.length];
    const style = drawStyle(rng, species.petalCount);
    const name = `image_${String(i + 1).padStart(5, '0')}`;
    const rgb = rgbaToRgb(renderFlower(species, style, o.size, rng));
    await writeFile(join(o.out, 'images', species.id, `${name}.png`), encodePng(rgb, o.size, o.size));
    await writeFile(join(o.out, 'text_c10', species.id, `${name}.txt`), captionsFor(species, rng).join('\n') + '\n');
    styles.push(JSON.stringify({ image: `${species.id}/${name}`, ...style }));
    progress.update(i + 1);
  }
  await writeFile(join(o.out, 'styles.jsonl'), styles.join('\n') + '\n');
  progress.finish();
  o.log?.(
    `wrote ${o.images} images of ${all.length} species (${train.length} train, ${test.length} unseen) to ${o.out}`,
  );
}
