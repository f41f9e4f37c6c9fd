/**
 * The procedural flowers data set (`npm run data`, bin/data.ts), rendered in
 * Reed's layout (layout.ts), with styles.jsonl (per-image style), species.json (per-class attributes) and
 * heldout_captions.json (per class, captions phrased apart from the training grammar, for the evaluation).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Progress } from '../cli/progress.ts';
import { encodePng } from '../images/png.ts';
import { Rng } from '../model/random.ts';
import { MAX_SPECIES, captionsFor, drawStyle, heldOutCaptionsFor, makeSpecies, renderFlower } from './flowers.ts';
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

/** What a data set folder holds: what a new one in the same folder replaces. */
const DATA_SET_FILES = ['images', 'text_c10', 'trainvalclasses.txt', 'testclasses.txt', 'species.json', 'styles.jsonl'];

/**
 * Makes `out` ready for a new data set: created, or emptied of an earlier data set's files (whose images a smaller or
 * other one would leave behind, with captions that no longer match); a folder holding anything else is refused.
 */
async function freshFolder(out: string): Promise<void> {
  const present = await readdir(out).catch(() => [] as string[]);
  const known = new Set([...DATA_SET_FILES, HELD_OUT_CAPTIONS]);
  const other = present.filter((f) => !known.has(f));
  if (present.length > 0 && (!present.includes('species.json') || other.length > 0))
    throw new Error(
      `${out} is not empty and not a data set (${(other.length ? other : present).slice(0, 3).join(', ')}): choose an empty or new folder`,
    );
  for (const f of present) await rm(join(out, f), { recursive: true, force: true });
  await mkdir(out, { recursive: true });
}

export async function generateFlowers(o: GenerateOptions): Promise<void> {
  const species = o.species ?? 50;
  const testSpecies = o.testSpecies ?? 10;
  if (!Number.isInteger(species) || species < 2 || species > MAX_SPECIES)
    throw new Error(`--species must be between 2 and ${MAX_SPECIES}`);
  if (!Number.isInteger(testSpecies) || testSpecies < 1 || testSpecies >= species)
    throw new Error(`--test-species must be at least 1 and below --species (${species}): some species must train`);
  if (o.images < 1) throw new Error('--images must be at least 1');
  if (o.size < 16 || o.size > 512) throw new Error('--size must be between 16 and 512');
  const rng = new Rng(o.seed);
  const { train, test } = makeSpecies(rng, species, testSpecies);
  const all = [...train, ...test];
  await freshFolder(o.out);
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
