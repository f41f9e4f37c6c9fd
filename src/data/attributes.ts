/**
 * The attributes of the procedural flowers that captions name, which the evaluation checks and the text stage's
 * attribute term reads: which ones a caption names, and the label of each for a species.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CENTRE_COLOURS,
  CENTRE_SIZES,
  CENTRE_WORDS,
  NUMBER_WORDS,
  PETAL_COLOURS,
  PETAL_SHAPES,
  SHAPE_WORDS,
  SIZE_WORDS,
  type Species,
} from './flowers.ts';

export const ATTRIBUTES = {
  petalColour: PETAL_COLOURS as readonly string[],
  petalCount: ['3', '4', '5', '6', '7', '8'] as readonly string[],
  petalShape: PETAL_SHAPES as readonly string[],
  centreColour: CENTRE_COLOURS as readonly string[],
  centreSize: CENTRE_SIZES as readonly string[],
} as const;
export type Attribute = keyof typeof ATTRIBUTES;
export const ATTRIBUTE_NAMES = Object.keys(ATTRIBUTES) as Attribute[];

/** The class index of each attribute for a species. */
export function labelsOf(s: Species): Record<Attribute, number> {
  return {
    petalColour: ATTRIBUTES.petalColour.indexOf(s.petalColour),
    petalCount: ATTRIBUTES.petalCount.indexOf(String(s.petalCount)),
    petalShape: ATTRIBUTES.petalShape.indexOf(s.petalShape),
    centreColour: ATTRIBUTES.centreColour.indexOf(s.centreColour),
    centreSize: ATTRIBUTES.centreSize.indexOf(s.centreSize),
  };
}

const words = (caption: string) => new Set(caption.toLowerCase().split(/[^a-z0-9]+/));

/** The attributes of `s` that `caption` names (a caption of that species). */
export function namedAttributes(caption: string, s: Species): Attribute[] {
  const w = words(caption);
  const named: Attribute[] = [];
  if (w.has(s.petalColour)) named.push('petalColour');
  if (w.has(NUMBER_WORDS[s.petalCount]) || w.has(String(s.petalCount))) named.push('petalCount');
  // whole words ("round", not the "round" of "around" or "surrounded"); phrases ("broad round") as written
  const lower = caption.toLowerCase();
  if (SHAPE_WORDS[s.petalShape].some((x) => (x.includes(' ') ? lower.includes(x) : w.has(x)))) named.push('petalShape');
  if (CENTRE_WORDS.some((x) => w.has(x)) && w.has(s.centreColour)) named.push('centreColour');
  if (SIZE_WORDS[s.centreSize].some((x) => w.has(x))) named.push('centreSize');
  return named;
}

/**
 * The species of the procedural data set in `dir` by class, and species.json's text; `who` needs them (for the
 * error where the data set has none).
 */
export async function readSpecies(dir: string, who: string): Promise<{ species: Map<string, Species>; text: string }> {
  const text = await readFile(join(dir, 'species.json'), 'utf8').catch(() => {
    throw new Error(`${dir} has no species.json: ${who} needs the procedural flowers data set (npm run data)`);
  });
  return { species: new Map((JSON.parse(text) as Species[]).map((s) => [s.id, s])), text };
}

/**
 * What each caption says of each attribute, in ATTRIBUTE_NAMES' order: its class index where the caption names it,
 * else -1 (the text stage's attribute labels).
 */
export function captionLabels(caption: string, s: Species): Int32Array {
  const named = new Set(namedAttributes(caption, s));
  const labels = labelsOf(s);
  return Int32Array.from(ATTRIBUTE_NAMES, (a) => (named.has(a) ? labels[a] : -1));
}
