/**
 * `npm run eval -- <checkpoint> --data DIR [--out DIR]`: measures what the paper measured, on the
 * procedural flowers data set (which records every attribute and style the evaluation needs):
 * caption fidelity on training and unseen classes beside the real-image ceiling, Fréchet distance in the
 * attribute classifier's feature space beside the real-vs-real floor, the style experiment (ROC AUC of
 * cosine similarity of S(x) for same vs different background / pose clusters, caption embedding as the
 * baseline), and the sheets. Writes report.md, report.json and PNG sheets.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { FlowerStyle, Species } from '../data/flowers.ts';
import { indexDataset } from '../data/layout.ts';
import { latentDim, validateModelConfig } from '../model/config.ts';
import { interpolate } from '../model/interpolation.ts';
import { Rng } from '../model/random.ts';
import { Synthesizer } from '../model/synthesizer.ts';
import { TrainingSet } from '../train/data.ts';
import {
  ATTRIBUTES,
  ATTRIBUTE_NAMES,
  type Attribute,
  labelsOf,
  namedAttributes,
  readSpecies,
} from '../data/attributes.ts';
import { type AttributeClassifier, pinnedOrTrained } from './classifier.ts';
import { clusterAuc, frechetDistance, nearestMeanLabels } from './metrics.ts';
import { artefactEnergy, backgroundColour, foregroundShare, mean, meanPairwiseDistance } from './pictures.ts';
import { HELD_OUT_CAPTIONS } from '../data/generate.ts';
import { Progress } from '../cli/progress.ts';
import { captionInterpolationSheet, noiseInterpolationSheet, samplesSheet, styleTransferSheet } from './sheets.ts';

/**
 * Images drawn per class for caption fidelity (and for the held-out phrasings). 256 since session 26: at 64 a share
 * near 85% over the 10 unseen species (640 images) has a standard error of 1.4 points, as large as the targets'
 * margins, and the shipped model read 82.7% at 64, 84.0% at 256 (petal count 62.4% / 59.7%). At 16 (reports before
 * session 12) one draw of seeds moved figures by several points.
 */
export const PER_CLASS = 256;

/** Where `npm run eval` and `eval:variants` keep pinned classifiers (EvalOptions.classifierDir). */
export const PINNED_CLASSIFIERS = 'models/eval-classifier';

export interface EvalOptions {
  checkpoint: string;
  data: string;
  out: string;
  /** Generated images per class for caption fidelity. */
  perClass: number;
  classifierSteps: number;
  /** Draw with this noise scale instead of the checkpoint's (ModelConfig.noiseScale): how a scale is chosen. */
  noiseScale?: number;
  /** Draw with this conditioning noise instead of the checkpoint's (ModelConfig.conditioningNoise). */
  conditioningNoise?: number;
  /** Draw with this conditioning gain instead of the checkpoint's (ModelConfig.conditioningGain). */
  conditioningGain?: number;
  /** Classifiers already trained on this data set, by image size, and which each is (the variants share one). */
  classifiers?: Map<number, { classifier: AttributeClassifier; source: string }>;
  /**
   * Where classifiers are pinned (`classifier-<size>.json` and `.bin`): the one there is used when it was trained
   * on this data set (its fingerprint), else one is trained, and kept there if none is pinned yet.
   */
  classifierDir?: string;
  log: (line: string) => void;
}

type Scores = Record<Attribute, number | null> & { all: number | null };

export interface EvalReport {
  checkpoint: string;
  steps: { text: number; gan: number; style: number };
  noiseScale: number;
  conditioningNoise: number;
  conditioningGain: number;
  /** Which classifier measured: pinned (its files and fingerprint) or trained for this run. */
  classifier: string;
  classifierAccuracyHeldOut: Record<Attribute, number>;
  fidelity: { generatedTrain: Scores; generatedUnseen: Scores; realTrain: Scores; realUnseen: Scores };
  /**
   * Training classes: drawn for the captions of one half of their held-out images vs the other half (frechetSplit);
   * generatedVsReal is the mean over FRECHET_DRAWS draws of seeds, `draws` each one.
   */
  frechet: { generatedVsReal: number; draws: number[]; realVsReal: number; images: number; reference: number };
  style: { backgroundAuc: number; poseAuc: number; captionBackgroundAuc: number; captionPoseAuc: number };
  /** Mean artefact energy (pictures.ts) of generated and held-out real images, and their ratio. */
  artefacts: { generated: number; real: number; ratio: number };
  /**
   * Caption interpolations between captions of different petal colours, fixed z: foreground share of the
   * middle frames relative to the two ends, the ends' own share beside real images', and how far the
   * background colour moves from the first frame (RGB distance, mean over frames).
   */
  interpolation: {
    middleForeground: number | null;
    endsForeground: number;
    realForeground: number;
    backgroundDrift: number;
  };
  /** Fidelity on captions phrased apart from the training grammar beside the grammar's, same classes and counts. */
  phrasing: { grammar: Scores; heldOut: Scores };
  /** Each unseen species' share of the caption fidelity above: where zero-shot fidelity is lost. */
  unseenSpecies: UnseenSpecies[];
  /**
   * Per attribute, the value phi itself gives the captions of the fidelity above that name one (nearestMeanLabels,
   * the means over the training species' captions): the share right on training species (in sample) and unseen
   * ones; null where none names it.
   */
  phiReads: Record<Attribute, { train: number | null; unseen: number | null }>;
  /**
   * Mean pairwise feature distance: across seeds for one caption, across captions for one seed; real images within a
   * class and across classes.
   */
  spread: { acrossSeeds: number; acrossCaptions: number; realWithinClass: number; realAcrossCaptions: number };
  sheets: string[];
}

/** One unseen species in the caption fidelity: its petal colour drawn, what was drawn instead, all attributes. */
export interface UnseenSpecies {
  species: string;
  /** Its attributes, as words. */
  attributes: string;
  /** Training species whose petals have its colour: how much of that colour the GAN saw. */
  trainingWithItsPetals: number;
  petalColour: number | null;
  /** Wrong petal colours the classifier saw, counted. */
  drawnInstead: Record<string, number>;
  /** Share of its captions naming the petal colour whose phi reads that colour (EvalReport.phiReads). */
  phiReadsPetalColour: number | null;
  all: number | null;
}

interface FidelityRow {
  cls: string;
  named: Attribute[];
  predicted: Record<Attribute, number>;
  truth: Record<Attribute, number>;
  /** The petal colour phi gives the caption, where it names one. */
  phiPetalColour?: number;
}

/** Share of named attributes shown, per attribute and over all. */
function score(rows: Omit<FidelityRow, 'cls'>[]): Scores {
  const hit = Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, [0, 0]])) as Record<Attribute, [number, number]>;
  for (const r of rows)
    for (const a of r.named) hit[a] = [hit[a][0] + (r.predicted[a] === r.truth[a] ? 1 : 0), hit[a][1] + 1];
  const per = Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, hit[a][1] ? hit[a][0] / hit[a][1] : null])) as Record<
    Attribute,
    number | null
  >;
  const total = ATTRIBUTE_NAMES.reduce((s, a) => [s[0] + hit[a][0], s[1] + hit[a][1]], [0, 0]);
  return { ...per, all: total[1] ? total[0] / total[1] : null };
}

function toBytes(x: tf.Tensor4D): Uint8Array[] {
  const [n, s] = x.shape;
  const d = tf.tidy(() => tf.clipByValue(tf.round(tf.mul(tf.add(x, 1), 127.5)), 0, 255).dataSync());
  return Array.from({ length: n }, (_, i) => Uint8Array.from(d.subarray(i * s * s * 3, (i + 1) * s * s * 3)));
}

function fromBytes(images: Uint8Array[], s: number): tf.Tensor4D {
  const out = new Float32Array(images.length * s * s * 3);
  images.forEach((img, i) => img.forEach((v, k) => (out[i * s * s * 3 + k] = v / 127.5 - 1)));
  return tf.tensor4d(out, [images.length, s, s, 3]);
}

/**
 * The Fréchet distance's two sets of held-out real images: each class's images go to `drawn` and `reference` in
 * turn, so both hold the same classes in the same numbers (one more in `drawn` for a class with an odd count). A
 * model is scored by one image for a caption of each `drawn` image against `reference`, and the floor is the
 * `drawn` images themselves against `reference`: a model that drew exactly the real images scores the floor.
 */
export function frechetSplit(
  images: number[],
  classOf: (i: number) => string,
): { drawn: number[]; reference: number[] } {
  const seen = new Map<string, number>();
  const drawn: number[] = [];
  const reference: number[] = [];
  for (const i of images) {
    const k = seen.get(classOf(i)) ?? 0;
    seen.set(classOf(i), k + 1);
    (k % 2 === 0 ? drawn : reference).push(i);
  }
  return { drawn, reference };
}

/**
 * Draws of seeds the Fréchet distance is averaged over: at about 330 images a set one draw moves it by tens (the
 * shipped model: 291.5 to 373.6).
 */
const FRECHET_DRAWS = 4;

/** Runs `f` over `items` in chunks (memory stays bounded at any data set size), with a progress bar if `label`. */
function chunked<T, R>(items: T[], size: number, f: (chunk: T[]) => R[], label?: string): R[] {
  const out: R[] = [];
  const progress = label ? new Progress(label, items.length) : null;
  for (let i = 0; i < items.length; i += size) {
    out.push(...f(items.slice(i, i + size)));
    progress?.update(out.length);
  }
  progress?.finish();
  return out;
}

export async function evaluate(o: EvalOptions): Promise<EvalReport> {
  if (!Number.isInteger(o.perClass) || o.perClass < 1) throw new Error('--per-class must be at least 1');
  await mkdir(o.out, { recursive: true });
  const synth = await Synthesizer.load(o.checkpoint);
  synth.model.config = validateModelConfig({
    ...synth.config,
    noiseScale: o.noiseScale ?? synth.config.noiseScale,
    conditioningNoise: o.conditioningNoise ?? synth.config.conditioningNoise,
    conditioningGain: o.conditioningGain ?? synth.config.conditioningGain,
  });
  const noiseDim = latentDim(synth.config);
  const size = synth.config.imageSize;
  const index = await indexDataset(o.data);
  const { species, text: speciesText } = await readSpecies(o.data, 'the evaluation');
  const styles = new Map(
    (await readFile(join(o.data, 'styles.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => {
        const { image, ...style } = JSON.parse(l) as FlowerStyle & { image: string };
        return [image, style] as const;
      }),
  );
  const set = await TrainingSet.load(o.data, size, o.log, 'all');
  const unseen = new Set(index.testClasses);
  const rng = new Rng(2024);

  // classifier on 80% of the real images; the other 20% are the held-out real images of every measure
  const order = rng.shuffle(set.samples.map((_, i) => i));
  const heldOut = order.slice(0, Math.floor(order.length / 5));
  let measuring = o.classifiers?.get(size);
  if (!measuring) {
    measuring = await pinnedOrTrained(
      set,
      species,
      speciesText,
      order.slice(heldOut.length),
      o.classifierSteps,
      o.classifierDir,
      o.log,
    );
    o.classifiers?.set(size, measuring);
  }
  const { classifier, source: classifierSource } = measuring;
  const features = (imgs: Uint8Array[]) => {
    const x = fromBytes(imgs, size);
    const p = classifier.predict(x);
    x.dispose();
    return p;
  };
  const predictReal = (indices: number[]) =>
    chunked(indices, 64, (c) => {
      const x = set.centred(c);
      const p = classifier.predict(x);
      x.dispose();
      return p.features.map((features, k) => ({ features, labels: p.labels[k] }));
    });
  const heldOutPredictions = predictReal(heldOut);
  const real = new Map(heldOut.map((i, k) => [i, heldOutPredictions[k]]));
  const accuracy = Object.fromEntries(
    ATTRIBUTE_NAMES.map((a) => [
      a,
      heldOut.filter((i) => real.get(i)!.labels[a] === labelsOf(species.get(set.samples[i].classId)!)[a]).length /
        heldOut.length,
    ]),
  ) as Record<Attribute, number>;

  // caption fidelity: captions of held-out images, drawn with random z; the same captions' real images as the ceiling
  o.log('caption fidelity ...');
  const byClass = new Map<string, number[]>();
  for (const i of heldOut) byClass.set(set.samples[i].classId, [...(byClass.get(set.samples[i].classId) ?? []), i]);
  const requests = [...byClass].flatMap(([cls, imgs]) =>
    Array.from({ length: o.perClass }, (_, k) => {
      const i = imgs[k % imgs.length];
      const caption = rng.pick(set.samples[i].captions);
      return {
        i,
        cls,
        caption,
        named: namedAttributes(caption, species.get(cls)!),
        truth: labelsOf(species.get(cls)!),
      };
    }),
  );
  /** One image for each caption, its noise from `from`; its phi, and the classifier's features and labels of each. */
  const drawFor = (captions: string[], from: Rng) => {
    const hs = synth.embed(captions);
    const imgs = synth.draw(hs.map((h) => ({ z: from.normals(noiseDim), h })));
    const p = features(imgs);
    return p.features.map((f, k) => ({ features: f, labels: p.labels[k], image: imgs[k], h: hs[k] }));
  };
  const drawAndClassify = (c: { caption: string }[]) =>
    drawFor(
      c.map((r) => r.caption),
      rng,
    );
  const generated = chunked(requests, 64, drawAndClassify, 'draw (caption fidelity)');
  // what phi itself says of each attribute a caption names, before G draws anything (the phi G was given)
  const probed = requests.map((r, k) => ({ ...r, h: generated[k].h }));
  const reads = new Map(ATTRIBUTE_NAMES.map((a) => [a, phiReads(probed, unseen, a)]));
  const rows = (which: 'gen' | 'real', wantUnseen: boolean): FidelityRow[] =>
    requests
      .map((r, k) => ({
        ...r,
        predicted: which === 'gen' ? generated[k].labels : real.get(r.i)!.labels,
        phiPetalColour: reads.get('petalColour')![k],
      }))
      .filter((r) => unseen.has(r.cls) === wantUnseen);
  const fidelity = {
    generatedTrain: score(rows('gen', false)),
    generatedUnseen: score(rows('gen', true)),
    realTrain: score(rows('real', false)),
    realUnseen: score(rows('real', true)),
  };
  const unseenSpecies = unseenBreakdown(rows('gen', true), species, unseen);

  // Fréchet distance in the classifier's feature space, training classes: a caption of each image of one half drawn,
  // against the other half; the floor is the two halves of real images
  const split = frechetSplit(
    heldOut.filter((i) => !unseen.has(set.samples[i].classId)),
    (i) => set.samples[i].classId,
  );
  if (split.reference.length < 2)
    throw new Error(
      `the Fréchet distance needs at least 2 held-out images in each half (a class's second, fourth ... image go to the second); ${o.data} gives ${split.reference.length}`,
    );
  const realOf = (ids: number[]) => ids.map((i) => real.get(i)!.features);
  const frechetRng = new Rng(2025); // its own stream: the measures after it draw what they drew before it existed
  const draws = Array.from({ length: FRECHET_DRAWS }, (_, k) => {
    const drawn = chunked(
      split.drawn,
      64,
      (ids) =>
        drawFor(
          ids.map((i) => frechetRng.pick(set.samples[i].captions)),
          frechetRng,
        ).map((g) => g.features),
      `draw (Fréchet ${k + 1}/${FRECHET_DRAWS})`,
    );
    return frechetDistance(drawn, realOf(split.reference));
  });
  const frechet = {
    generatedVsReal: mean(draws),
    draws,
    realVsReal: frechetDistance(realOf(split.drawn), realOf(split.reference)),
    images: split.drawn.length,
    reference: split.reference.length,
  };

  // style: S(x) of held-out real images; clusters by background colour and by pose (position quadrant)
  o.log('style experiment ...');
  const realBytes = chunked(heldOut, 64, (c) => {
    const x = set.centred(c);
    const b = toBytes(x);
    x.dispose();
    return b;
  });
  const styleVectors = chunked(realBytes, 64, (c) => synth.styleOf(c));
  const captionVectors = chunked(heldOut, 128, (c) => synth.embed(c.map((i) => set.samples[i].captions[0])));
  const styleOf = (i: number) => styles.get(set.samples[i].key)!;
  const background = heldOut.map((i) => styleOf(i).background);
  const pose = heldOut.map((i) => `${styleOf(i).x < 0 ? 'L' : 'R'}${styleOf(i).y < 0 ? 'T' : 'B'}`);
  const style = {
    backgroundAuc: clusterAuc(styleVectors, background),
    poseAuc: clusterAuc(styleVectors, pose),
    captionBackgroundAuc: clusterAuc(captionVectors, background),
    captionPoseAuc: clusterAuc(captionVectors, pose),
  };

  o.log('pictures: artefacts, interpolation, phrasing, spread ...');
  const trainImages = generated.filter((_, k) => !unseen.has(requests[k].cls)).map((g) => g.image);
  const energy = {
    generated: mean(trainImages.map((img) => artefactEnergy(img, size))),
    real: mean(realBytes.map((img) => artefactEnergy(img, size))),
  };
  const artefacts = { ...energy, ratio: energy.generated / Math.max(energy.real, 1e-12) };
  const trainingClasses = [...byClass.keys()].filter((c) => !unseen.has(c));
  const interpolation = interpolationMeasures(synth, set, byClass, trainingClasses, species, realBytes, rng);
  const phrasing = await phrasingMeasures(
    o.data,
    byClass,
    species,
    requests,
    generated,
    o.perClass,
    rng,
    drawAndClassify,
  );
  const spread = spreadMeasures(synth, trainingClasses, byClass, set, real, features);

  o.log('sheets ...');
  const firstCaption = (cls: string) => set.samples[byClass.get(cls)![0]].captions[0];
  const unseenCls = [...byClass.keys()].filter((c) => unseen.has(c));
  const sheetCaptions = [...trainingClasses.slice(0, 4), ...unseenCls.slice(0, 4)].map(firstCaption);
  const sheets = [
    await samplesSheet(o.out, synth, sheetCaptions, 1),
    await captionInterpolationSheet(
      o.out,
      synth,
      [
        [sheetCaptions[0], sheetCaptions[1]],
        [sheetCaptions[2], sheetCaptions[3]],
        [sheetCaptions[4], sheetCaptions[5]],
        [sheetCaptions[6], sheetCaptions[7]],
      ],
      2,
    ),
    await noiseInterpolationSheet(o.out, synth, sheetCaptions.slice(0, 4), 3),
    await styleTransferSheet(o.out, synth, realBytes.slice(0, 6), sheetCaptions.slice(0, 6)),
  ];

  const report: EvalReport = {
    checkpoint: o.checkpoint,
    steps: synth.meta.steps,
    noiseScale: synth.config.noiseScale,
    conditioningNoise: synth.config.conditioningNoise,
    conditioningGain: synth.config.conditioningGain,
    classifier: classifierSource,
    classifierAccuracyHeldOut: accuracy,
    fidelity,
    frechet,
    style,
    artefacts,
    interpolation,
    phrasing,
    unseenSpecies,
    phiReads: Object.fromEntries(
      ATTRIBUTE_NAMES.map((a) => [a, phiReadsRight(probed, unseen, a, reads.get(a)!)]),
    ) as EvalReport['phiReads'],
    spread,
    sheets,
  };
  await writeFile(join(o.out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(join(o.out, 'report.md'), renderReport(report, sheetCaptions));
  synth.dispose();
  return report;
}

/** A caption of the fidelity draws with the phi G was given. */
type ProbedCaption = Pick<FidelityRow, 'cls' | 'named' | 'truth'> & { h: Float32Array };

/**
 * The value of `a` phi reads off each caption that names it (nearestMeanLabels over the means of the training
 * species' captions naming each value); undefined where a caption does not name it.
 */
export function phiReads(rows: ProbedCaption[], unseen: Set<string>, a: Attribute): (number | undefined)[] {
  const naming = rows.filter((r) => r.named.includes(a));
  const read = nearestMeanLabels(
    naming.flatMap((r) => (unseen.has(r.cls) ? [] : [{ v: r.h, label: r.truth[a] }])),
    naming.map((r) => r.h),
  );
  const byRow = new Map(naming.map((r, k) => [r, read[k]]));
  return rows.map((r) => byRow.get(r));
}

/** The share of the captions naming `a` whose phi reads it right (`reads`: phiReads), training and unseen apart. */
export function phiReadsRight(rows: ProbedCaption[], unseen: Set<string>, a: Attribute, reads: (number | undefined)[]) {
  const share = (wantUnseen: boolean) => {
    const mine = rows.flatMap((r, k) => (reads[k] !== undefined && unseen.has(r.cls) === wantUnseen ? [k] : []));
    return mine.length ? mine.filter((k) => reads[k] === rows[k].truth[a]).length / mine.length : null;
  };
  return { train: share(false), unseen: share(true) };
}

export function unseenBreakdown(
  rows: FidelityRow[],
  species: Map<string, Species>,
  unseen: Set<string>,
): UnseenSpecies[] {
  const training = [...species.values()].filter((s) => !unseen.has(s.id));
  return [...new Set(rows.map((r) => r.cls))].sort().map((cls) => {
    const s = species.get(cls)!;
    const mine = rows.filter((r) => r.cls === cls);
    const drawnInstead: Record<string, number> = {};
    for (const r of mine)
      if (r.named.includes('petalColour') && r.predicted.petalColour !== r.truth.petalColour) {
        const colour = ATTRIBUTES.petalColour[r.predicted.petalColour];
        drawnInstead[colour] = (drawnInstead[colour] ?? 0) + 1;
      }
    const scores = score(mine);
    const naming = mine.filter((r) => r.named.includes('petalColour'));
    return {
      species: cls,
      attributes: `${s.petalColour} petals, ${s.centreColour} centre, ${s.petalCount} ${s.petalShape} petals, ${s.centreSize} centre`,
      trainingWithItsPetals: training.filter((t) => t.petalColour === s.petalColour).length,
      petalColour: scores.petalColour,
      drawnInstead,
      phiReadsPetalColour: naming.length
        ? naming.filter((r) => r.phiPetalColour === r.truth.petalColour).length / naming.length
        : null,
      all: scores.all,
    };
  });
}

const INTERPOLATION_FRAMES = 9;
const MIDDLE_FRAMES = [3, 4, 5]; // mix 0.375 .. 0.625

/** 16 pairs of training-class captions with different petal colours, two noise vectors each, 9 frames. */
function interpolationMeasures(
  synth: Synthesizer,
  set: TrainingSet,
  byClass: Map<string, number[]>,
  classes: string[],
  species: Map<string, Species>,
  realBytes: Uint8Array[],
  rng: Rng,
): EvalReport['interpolation'] {
  const size = synth.config.imageSize;
  const strips: Uint8Array[][] = [];
  const centre = synth.conditioningCentre;
  for (let p = 0; p < 16; p++) {
    const a = classes[p % classes.length];
    const b =
      classes.find((c, k) => k > p && species.get(c)!.petalColour !== species.get(a)!.petalColour) ??
      classes.find((c) => species.get(c)!.petalColour !== species.get(a)!.petalColour);
    if (!b) break;
    const [ha, hb] = synth.embed([
      set.samples[byClass.get(a)![0]].captions[0],
      set.samples[byClass.get(b)![0]].captions[0],
    ]);
    for (let s = 0; s < 2; s++) {
      const z = rng.normals(latentDim(synth.config));
      strips.push(
        synth.draw(
          Array.from({ length: INTERPOLATION_FRAMES }, (_, k) => ({
            z,
            h: interpolate(ha, hb, k / (INTERPOLATION_FRAMES - 1), centre),
          })),
        ),
      );
    }
  }
  const ratios: number[] = [];
  const ends: number[] = [];
  const drift: number[] = [];
  for (const strip of strips) {
    const fg = strip.map((img) => foregroundShare(img, size));
    const end = (fg[0] + fg[fg.length - 1]) / 2;
    ends.push(end);
    if (end > 0.01) ratios.push(mean(MIDDLE_FRAMES.map((k) => fg[k])) / end);
    const bg0 = backgroundColour(strip[0], size);
    drift.push(mean(strip.map((img) => Math.hypot(...backgroundColour(img, size).map((v, c) => v - bg0[c])))));
  }
  return {
    middleForeground: ratios.length ? mean(ratios) : null,
    endsForeground: mean(ends),
    realForeground: mean(realBytes.map((img) => foregroundShare(img, size))),
    backgroundDrift: mean(drift),
  };
}

type Drawn = { features: Float32Array; labels: Record<Attribute, number>; image: Uint8Array };
type Request = { i: number; cls: string; caption: string; named: Attribute[]; truth: Record<Attribute, number> };

/**
 * The same classes and counts as the grammar's fidelity requests, with held-out phrasings (data set's
 * heldout_captions.json).
 */
async function phrasingMeasures(
  data: string,
  byClass: Map<string, number[]>,
  species: Map<string, Species>,
  requests: Request[],
  generated: Drawn[],
  perClass: number,
  rng: Rng,
  draw: (c: { caption: string }[]) => Drawn[],
): Promise<EvalReport['phrasing']> {
  const grammar = score(requests.map((r, k) => ({ ...r, predicted: generated[k].labels })));
  const file = await readFile(join(data, HELD_OUT_CAPTIONS), 'utf8').catch(() => null);
  if (!file) return { grammar, heldOut: score([]) };
  const phrased = JSON.parse(file) as Record<string, string[]>;
  const asked = [...byClass.keys()].flatMap((cls) =>
    Array.from({ length: perClass }, () => {
      const caption = rng.pick(phrased[cls]);
      return { caption, named: namedAttributes(caption, species.get(cls)!), truth: labelsOf(species.get(cls)!) };
    }),
  );
  const drawn = chunked(asked, 64, draw, 'draw (held-out phrasings)');
  return { grammar, heldOut: score(asked.map((r, k) => ({ ...r, predicted: drawn[k].labels }))) };
}

/**
 * 16 training-class captions x 8 seeds, in the classifier's feature space; real images of the same classes beside them.
 */
function spreadMeasures(
  synth: Synthesizer,
  trainClasses: string[],
  byClass: Map<string, number[]>,
  set: TrainingSet,
  real: Map<number, { features: Float32Array }>,
  features: (imgs: Uint8Array[]) => { features: Float32Array[] },
): EvalReport['spread'] {
  const classes = trainClasses.slice(0, 16);
  const seeds = Array.from({ length: 8 }, (_, k) => new Rng(100 + k).normals(latentDim(synth.config)));
  const h = synth.embed(classes.map((c) => set.samples[byClass.get(c)![0]].captions[0]));
  const f = chunked(
    h.flatMap((hv) => seeds.map((z) => ({ z, h: hv }))),
    64,
    (c) => features(synth.draw(c)).features,
  );
  const at = (c: number, s: number) => f[c * seeds.length + s];
  const realOf = (c: string) =>
    byClass
      .get(c)!
      .slice(0, 8)
      .map((i) => real.get(i)!.features);
  return {
    acrossSeeds: mean(classes.map((_, c) => meanPairwiseDistance(seeds.map((_, s) => at(c, s))))),
    acrossCaptions: mean(seeds.map((_, s) => meanPairwiseDistance(classes.map((_, c) => at(c, s))))),
    realWithinClass: mean(classes.map((c) => meanPairwiseDistance(realOf(c)))),
    realAcrossCaptions: meanPairwiseDistance(classes.map((c) => realOf(c)[0])),
  };
}

const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
/** "red 67, green 3", most drawn first; "-" for none. */
const drawnInstead = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([colour, n]) => `${colour} ${n}`)
    .join(', ') || '-';

export function renderReport(r: EvalReport, captions: string[]): string {
  const f = r.fidelity;
  const row = (a: Attribute | 'all') =>
    `| ${a} | ${pct(f.generatedTrain[a])} | ${pct(f.realTrain[a])} | ${pct(f.generatedUnseen[a])} | ${pct(f.realUnseen[a])} |`;
  const ratio = (a: Attribute) =>
    f.generatedTrain[a] !== null && f.realTrain[a] ? (f.generatedTrain[a]! / f.realTrain[a]!).toFixed(2) : 'n/a';
  return `# Evaluation of ${r.checkpoint}

Steps trained: text ${r.steps.text}, GAN ${r.steps.gan}, style ${r.steps.style}. Noise scale ${r.noiseScale} (z = ${r.noiseScale} x N(0, I)), conditioning ${r.conditioningNoise > 0 ? `noise ${r.conditioningNoise} (c = mu + ${r.conditioningNoise} sigma x N(0, I))` : 'at mu'}${r.conditioningGain !== 1 ? `, captions at gain ${r.conditioningGain.toFixed(3)} about their mean (G reads m + ${r.conditioningGain.toFixed(3)} (phi(t) - m))` : ''}.

## Caption fidelity
Share of the attributes a caption names that the attribute classifier sees in the image (generated from
the caption with random z, and the real image the caption describes: the ceiling). Unseen = the test
classes, never shown to the GAN (zero-shot).

| attribute | generated, training classes | real, training classes | generated, unseen classes | real, unseen classes |
| --- | --- | --- | --- | --- |
${(['petalColour', 'centreColour', 'petalCount', 'petalShape', 'centreSize', 'all'] as const).map(row).join('\n')}

Petal colour fidelity relative to the real-image ceiling: ${ratio('petalColour')} (training classes).

Unseen classes one by one (the generated column above, split by species; "training species with its petals": how
many of the species the GAN trained on have that petal colour; "phi reads it": the share of its captions whose
phi(t) is nearest the mean of that colour's captions of the training species, centred, in cosine: what the
caption embedding G is given says of the colour, before G draws):

| species | attributes | training species with its petals | phi reads it | petal colour | drawn instead | all attributes |
| --- | --- | --- | --- | --- | --- | --- |
${r.unseenSpecies.map((u) => `| ${u.species} | ${u.attributes} | ${u.trainingWithItsPetals} | ${pct(u.phiReadsPetalColour)} | ${pct(u.petalColour)} | ${drawnInstead(u.drawnInstead)} | ${pct(u.all)} |`).join('\n')}

What phi reads of each attribute, the same way: the share of the captions naming it whose phi(t) is nearest the
mean of the training species' captions naming its value (in sample for the training species: the captions the
means are made of).

| attribute | training species | unseen species |
| --- | --- | --- |
${ATTRIBUTE_NAMES.map((a) => `| ${a} | ${pct(r.phiReads[a].train)} | ${pct(r.phiReads[a].unseen)} |`).join('\n')}

Classifier: ${r.classifier}. Accuracy on held-out real images: ${ATTRIBUTE_NAMES.map((a) => `${a} ${pct(r.classifierAccuracyHeldOut[a])}`).join(', ')}.

## Fréchet distance (classifier feature space, 128-d)
| generated vs real | real vs real (floor) |
| --- | --- |
| ${r.frechet.generatedVsReal.toFixed(2)} | ${r.frechet.realVsReal.toFixed(2)} |

Training classes: ${r.frechet.images} images drawn, one for a caption of each image of one half of their held-out
real images, against the other half (${r.frechet.reference} images); the floor is the first half's real images
against the same ${r.frechet.reference}: what a model that drew exactly the real images would score. Generated vs real is the
mean of ${r.frechet.draws.length} draws of seeds: ${r.frechet.draws.map((d) => d.toFixed(1)).join(', ')}.

## Style (section 5.3)
ROC AUC of cosine similarity, same vs different cluster, on held-out real images.

| vector | background colour | pose (position) |
| --- | --- | --- |
| style encoder S(x) | ${r.style.backgroundAuc.toFixed(3)} | ${r.style.poseAuc.toFixed(3)} |
| caption embedding phi(t) (baseline) | ${r.style.captionBackgroundAuc.toFixed(3)} | ${r.style.captionPoseAuc.toFixed(3)} |

## Pictures
| measure | generated | real images |
| --- | --- | --- |
| artefact energy (checkerboard and grain, x 1e-4) | ${(r.artefacts.generated * 1e4).toFixed(2)} (${r.artefacts.ratio.toFixed(2)}x real) | ${(r.artefacts.real * 1e4).toFixed(2)} |
| caption interpolation: foreground of the middle frames / of the ends | ${r.interpolation.middleForeground?.toFixed(2) ?? 'n/a (no foreground at the ends)'} | 1 (ideal) |
| caption interpolation: foreground share of the end frames | ${pct(r.interpolation.endsForeground)} | ${pct(r.interpolation.realForeground)} |
| caption interpolation: background colour drift along a strip (RGB distance) | ${r.interpolation.backgroundDrift.toFixed(1)} | 0 (ideal) |
| spread across seeds, one caption | ${r.spread.acrossSeeds.toFixed(3)} | ${r.spread.realWithinClass.toFixed(3)} (images of one class) |
| spread across captions, one seed | ${r.spread.acrossCaptions.toFixed(3)} | ${r.spread.realAcrossCaptions.toFixed(3)} (one image a class) |

Artefact energy: mean squared response of the 2x2 filter [[1,-1],[-1,1]]/2 (zero on flat colour and straight
edges). Interpolations: 16 pairs of training captions with different petal colours, 2 noise vectors each,
9 frames; the middle frames are mixes 0.375-0.625. Spread: mean pairwise distance in the classifier's
feature space, 16 captions x 8 seeds.

## Held-out phrasings
Captions written apart from the training grammar (other sentence shapes and filler words, never trained
on; the data set's heldout_captions.json), the same classes and counts as the grammar captions above.

| attribute | grammar captions | held-out phrasings |
| --- | --- | --- |
${(['petalColour', 'centreColour', 'petalCount', 'petalShape', 'centreSize', 'all'] as const).map((a) => `| ${a} | ${pct(r.phrasing.grammar[a])} | ${pct(r.phrasing.heldOut[a])} |`).join('\n')}

Petal colour on held-out phrasings relative to grammar captions: ${r.phrasing.grammar.petalColour && r.phrasing.heldOut.petalColour !== null ? (r.phrasing.heldOut.petalColour / r.phrasing.grammar.petalColour).toFixed(2) : 'n/a'}.

## Sheets
${r.sheets.map((s) => `- ![${s}](${s})`).join('\n')}

Captions of the sheets' rows (the first four from training classes, the last four unseen):
${captions.map((c, i) => `${i + 1}. ${c}`).join('\n')}
`;
}
