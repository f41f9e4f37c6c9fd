/**
 * The attributes of the procedural flowers that captions name and the evaluation checks: which ones a
 * caption names, and the label of each for a species.
 */
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
} from '../data/flowers.ts';

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
