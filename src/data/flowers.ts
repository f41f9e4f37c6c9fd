/**
 * The procedural flowers data set: Oxford-102's structure (species classes, ten captions an image, unseen
 * test classes) with attributes that captions name and style that they never do (background, pose,
 * position, scale), recorded per image for the evaluation. Written in Reed's layout (see layout.ts).
 */
import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';
import { Rng } from '../model/random.ts';

export const PETAL_COLOURS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white'] as const;
export const CENTRE_COLOURS = ['yellow', 'orange', 'brown', 'black', 'white', 'green'] as const;
export const PETAL_SHAPES = ['round', 'pointed'] as const;
export const CENTRE_SIZES = ['small', 'large'] as const;
export const BACKGROUNDS = ['charcoal', 'sand', 'sky', 'moss', 'plum', 'slate'] as const;

const RGB: Record<string, [number, number, number]> = {
  red: [214, 40, 40],
  orange: [245, 130, 30],
  yellow: [245, 215, 40],
  green: [70, 170, 60],
  blue: [50, 100, 220],
  purple: [130, 60, 180],
  pink: [240, 130, 180],
  white: [240, 240, 235],
  brown: [120, 70, 30],
  black: [25, 20, 20],
  charcoal: [45, 45, 50],
  sand: [200, 185, 150],
  sky: [150, 195, 230],
  moss: [60, 85, 45],
  plum: [75, 40, 70],
  slate: [105, 120, 135],
};

export interface Species {
  id: string;
  petalColour: (typeof PETAL_COLOURS)[number];
  petalCount: number;
  petalShape: (typeof PETAL_SHAPES)[number];
  centreColour: (typeof CENTRE_COLOURS)[number];
  centreSize: (typeof CENTRE_SIZES)[number];
  /** A second colour at the petal tips, or null. */
  tipColour: (typeof PETAL_COLOURS)[number] | null;
}

/** Style the captions never mention, drawn independently of the species. */
export interface FlowerStyle {
  background: (typeof BACKGROUNDS)[number];
  rotation: number; // radians, [0, 2 pi / petals)
  x: number; // centre offset, fraction of the image
  y: number;
  scale: number; // flower radius, fraction of the image
}

export const speciesKey = (s: Omit<Species, 'id'>): string =>
  `${s.petalColour}|${s.petalCount}|${s.petalShape}|${s.centreColour}|${s.centreSize}|${s.tipColour}`;

/** The most species `makeSpecies` draws: few enough that distinct ones stay quick to find among the combinations. */
export const MAX_SPECIES = 1000;

/**
 * `count` distinct species; the last `testCount` are the unseen split. Every petal colour appears among
 * the training species, so the unseen ones are new combinations of seen attributes (zero-shot).
 */
export function makeSpecies(rng: Rng, count = 50, testCount = 10): { train: Species[]; test: Species[] } {
  const seen = new Set<string>();
  const all: Species[] = [];
  while (all.length < count) {
    const i = all.length;
    const petalColour = i < PETAL_COLOURS.length ? PETAL_COLOURS[i] : rng.pick(PETAL_COLOURS);
    const tip = rng.uniform() < 0.3 ? rng.pick(PETAL_COLOURS.filter((c) => c !== petalColour)) : null;
    const s = {
      petalColour,
      petalCount: 3 + rng.int(6),
      petalShape: rng.pick(PETAL_SHAPES),
      centreColour: rng.pick(CENTRE_COLOURS.filter((c) => c !== petalColour)),
      centreSize: rng.pick(CENTRE_SIZES),
      tipColour: tip,
    };
    const key = speciesKey(s);
    if (seen.has(key)) continue;
    seen.add(key);
    all.push({ id: `class_${String(i + 1).padStart(3, '0')}`, ...s });
  }
  return { train: all.slice(0, count - testCount), test: all.slice(count - testCount) };
}

export function drawStyle(rng: Rng, petalCount: number): FlowerStyle {
  return {
    background: rng.pick(BACKGROUNDS),
    rotation: rng.uniform() * ((2 * Math.PI) / petalCount),
    x: (rng.uniform() - 0.5) * 0.24,
    y: (rng.uniform() - 0.5) * 0.24,
    scale: 0.3 + rng.uniform() * 0.14,
  };
}

const jitter = (rng: Rng, [r, g, b]: [number, number, number], amount = 18) =>
  [r, g, b].map((v) => Math.max(0, Math.min(255, Math.round(v + (rng.uniform() - 0.5) * 2 * amount))));
const css = (c: number[]) => `rgb(${c[0]},${c[1]},${c[2]})`;

function petalPath(ctx: SKRSContext2D, shape: Species['petalShape'], length: number, width: number): void {
  ctx.beginPath();
  if (shape === 'round') {
    ctx.ellipse(length / 2, 0, length / 2, width / 2, 0, 0, 2 * Math.PI);
  } else {
    ctx.moveTo(0, 0);
    ctx.quadraticCurveTo(length * 0.45, -width * 0.75, length, 0);
    ctx.quadraticCurveTo(length * 0.45, width * 0.75, 0, 0);
  }
  ctx.closePath();
}

/** Renders one flower as RGBA bytes, size x size. Small per-image variation keeps a species a species. */
export function renderFlower(species: Species, style: FlowerStyle, size: number, rng: Rng): Uint8ClampedArray {
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = css(jitter(rng, RGB[style.background], 10));
  ctx.fillRect(0, 0, size, size);
  ctx.translate(size * (0.5 + style.x), size * (0.5 + style.y));
  ctx.rotate(style.rotation);
  const radius = size * style.scale;
  const length = radius * (0.92 + rng.uniform() * 0.12);
  const width =
    radius *
    (species.petalShape === 'round' ? 1.5 : 1.2) *
    Math.min(1, 4.5 / species.petalCount) *
    (0.9 + rng.uniform() * 0.2);
  const petal = jitter(rng, RGB[species.petalColour]);
  const tip = species.tipColour ? jitter(rng, RGB[species.tipColour]) : null;
  for (let k = 0; k < species.petalCount; k++) {
    ctx.save();
    ctx.rotate((k * 2 * Math.PI) / species.petalCount);
    petalPath(ctx, species.petalShape, length, width);
    if (tip) {
      const g = ctx.createLinearGradient(0, 0, length, 0);
      g.addColorStop(0, css(petal));
      g.addColorStop(0.55, css(petal));
      g.addColorStop(1, css(tip));
      ctx.fillStyle = g;
    } else ctx.fillStyle = css(petal);
    ctx.fill();
    ctx.strokeStyle = 'rgba(0,0,0,0.25)';
    ctx.lineWidth = Math.max(0.5, size / 96);
    ctx.stroke();
    ctx.restore();
  }
  ctx.beginPath();
  ctx.arc(0, 0, radius * (species.centreSize === 'large' ? 0.42 : 0.2) * (0.92 + rng.uniform() * 0.16), 0, 2 * Math.PI);
  ctx.fillStyle = css(jitter(rng, RGB[species.centreColour], 12));
  ctx.fill();
  return ctx.getImageData(0, 0, size, size).data;
}

// ---------------------------------------------------------------- captions

export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight'];
export const SHAPE_WORDS = {
  round: ['round', 'rounded', 'oval', 'broad round'],
  pointed: ['pointed', 'pointy', 'sharp', 'narrow pointed'],
};
export const SIZE_WORDS = { small: ['small', 'tiny', 'little'], large: ['large', 'big', 'wide'] };
export const CENTRE_WORDS = ['centre', 'center', 'middle', 'stamen'];
const FLOWER_WORDS = ['flower', 'bloom', 'blossom'];

/** The words one caption draws from, each pick random: the same for the training grammar and the held-out phrasings. */
function vocabulary(s: Species, rng: Rng) {
  return {
    c: s.petalColour,
    cc: s.centreColour,
    n: () => (rng.uniform() < 0.7 ? NUMBER_WORDS[s.petalCount] : String(s.petalCount)),
    shape: () => rng.pick(SHAPE_WORDS[s.petalShape]),
    size: () => rng.pick(SIZE_WORDS[s.centreSize]),
    centre: () => rng.pick(CENTRE_WORDS),
    flower: () => rng.pick(FLOWER_WORDS),
    tips: () =>
      s.tipColour
        ? rng.pick([
            ` with ${s.tipColour} tips`,
            ` that fade to ${s.tipColour} at the tips`,
            ` and ${s.tipColour} edges`,
          ])
        : '',
  };
}

/**
 * Ten captions in the flowers data set's style; some name every attribute, some only a few. The grammar
 * varies synonyms, word order and sentence form (statements, lists, fragments, "there is/are", passive
 * and relative clauses) so the caption encoder learns the attribute words rather than one sentence shape.
 */
export function captionsFor(s: Species, rng: Rng, count = 10): string[] {
  const { c, cc, n, shape, size, centre, flower, tips } = vocabulary(s, rng);
  const templates: (() => string)[] = [
    () => `this ${flower()} has ${n()} ${shape()} ${c} petals and a ${size()} ${cc} ${centre()}`,
    () => `a ${flower()} with ${n()} ${c} petals${tips()} around a ${size()} ${cc} ${centre()}`,
    () => `the petals of this ${flower()} are ${c} and ${shape()}${tips()}`,
    () => `this ${flower()} is ${c} and has a ${cc} ${centre()}`,
    () => `${n()} ${shape()} petals, ${c}${tips()}, surround a ${size()} ${cc} ${centre()}`,
    () => `a ${c} ${flower()} with ${n()} petals`,
    () => `this ${flower()} has a ${size()} ${cc} ${centre()} surrounded by ${shape()} ${c} petals`,
    () => `the ${flower()} shown has ${c} petals that are ${shape()} and a ${cc} ${centre()}`,
    () => `${c} petals${tips()} and a ${size()} ${centre()} that is ${cc}`,
    () => `a ${flower()} with ${shape()} petals in ${c}`,
    () => `this ${flower()} has ${n()} petals which are ${c}${tips()}`,
    () => `there are ${n()} ${c} petals on this ${flower()} and its ${centre()} is ${cc}`,
    () => `${c}, ${shape()} petals and a ${cc} ${centre()}`,
    () => `the ${centre()} is ${cc} and ${size()}, and the petals are ${c}`,
    () => `a ${size()} ${cc} ${centre()} is surrounded by ${n()} ${c} petals`,
    () => `there is a ${c} ${flower()} here with a ${cc} ${centre()}`,
    () => `${n()} petals in ${c} around a ${cc} ${centre()}`,
    () => `an image of a ${c} ${flower()} with ${shape()} petals`,
    () => `this is a ${flower()} with ${c} petals${tips()}`,
    () => `its petals are ${c} and its ${centre()} is ${size()} and ${cc}`,
  ];
  const order = rng.shuffle(templates.map((_, i) => i));
  return Array.from({ length: count }, (_, i) => templates[order[i % templates.length]]());
}

/**
 * Captions written apart from the training grammar: other sentence shapes and other filler words
 * ("picture", "whose", "featuring", "coloured"...), never used in training. The attribute words are the
 * same, so the evaluation can tell which attributes each one names; it measures whether the caption
 * encoder follows those words in wording it has not seen.
 */
export function heldOutCaptionsFor(s: Species, rng: Rng, count = 10): string[] {
  const { c, cc, n, shape, size, centre, tips } = vocabulary(s, rng);
  const templates: (() => string)[] = [
    () => `a picture of a flower whose petals are ${c}`,
    () => `a photo showing a plant in bloom, featuring ${n()} ${c} petals`,
    () => `i see a flower whose ${centre()} is ${cc} and whose petals are ${c}`,
    () => `petal colour: ${c}; petal shape: ${shape()}; ${centre()} colour: ${cc}, ${size()}.`,
    () => `a close-up of some ${c} coloured petals${tips()} around a ${cc} ${centre()}`,
    () => `what a lovely flower, with ${shape()} ${c} petals!`,
    () => `here we have ${n()} petals, all of them ${c}, and a ${size()} ${centre()} coloured ${cc}`,
    () => `one flower displaying ${c} petals and a ${cc} ${centre()}`,
    () => `picture of petals coloured ${c} and ${shape()}`,
    () => `a garden flower: ${c} petals, ${cc} ${centre()}`,
    () => `flower with ${c} petals shaped ${shape()}, ${n()} in total`,
    () => `you can see a ${size()} ${cc} ${centre()} in the middle of ${c} petals`,
  ];
  const order = rng.shuffle(templates.map((_, i) => i));
  return Array.from({ length: count }, (_, i) => templates[order[i % templates.length]]());
}
