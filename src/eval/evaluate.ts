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
import { Rng } from '../model/random.ts';
import { Synthesizer } from '../model/synthesizer.ts';
import { TrainingSet } from '../train/data.ts';
import { ATTRIBUTE_NAMES, type Attribute, labelsOf, namedAttributes } from './attributes.ts';
import { AttributeClassifier } from './classifier.ts';
import { clusterAuc, frechetDistance } from './metrics.ts';
import { captionInterpolationSheet, noiseInterpolationSheet, samplesSheet, styleTransferSheet } from './sheets.ts';

export interface EvalOptions {
  checkpoint: string;
  data: string;
  out: string;
  /** Generated images per class for fidelity, and real/generated images for the Fréchet distance. */
  perClass: number;
  fidImages: number;
  classifierSteps: number;
  log: (line: string) => void;
}

type Scores = Record<Attribute, number | null> & { all: number | null };

export interface EvalReport {
  checkpoint: string;
  steps: { text: number; gan: number; style: number };
  classifierAccuracyHeldOut: Record<Attribute, number>;
  fidelity: { generatedTrain: Scores; generatedUnseen: Scores; realTrain: Scores; realUnseen: Scores };
  frechet: { generatedVsReal: number; realVsReal: number };
  style: { backgroundAuc: number; poseAuc: number; captionBackgroundAuc: number; captionPoseAuc: number };
  sheets: string[];
}

/** Share of named attributes shown, per attribute and over all. */
function score(rows: { named: Attribute[]; predicted: Record<Attribute, number>; truth: Record<Attribute, number> }[]): Scores {
  const hit = Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, [0, 0]])) as Record<Attribute, [number, number]>;
  for (const r of rows) for (const a of r.named) hit[a] = [hit[a][0] + (r.predicted[a] === r.truth[a] ? 1 : 0), hit[a][1] + 1];
  const per = Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, hit[a][1] ? hit[a][0] / hit[a][1] : null])) as Record<Attribute, number | null>;
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

/** Runs `f` over `items` in chunks (memory stays bounded at any data set size). */
function chunked<T, R>(items: T[], size: number, f: (chunk: T[]) => R[]): R[] {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...f(items.slice(i, i + size)));
  return out;
}

export async function evaluate(o: EvalOptions): Promise<EvalReport> {
  await mkdir(o.out, { recursive: true });
  const synth = await Synthesizer.load(o.checkpoint);
  const size = synth.config.imageSize;
  const index = await indexDataset(o.data);
  const speciesList = JSON.parse(await readFile(join(o.data, 'species.json'), 'utf8').catch(() => {
    throw new Error(`${o.data} has no species.json: the evaluation needs the procedural flowers data set (npm run data)`);
  })) as Species[];
  const species = new Map(speciesList.map((s) => [s.id, s]));
  const styles = new Map(
    (await readFile(join(o.data, 'styles.jsonl'), 'utf8')).trim().split('\n').map((l) => {
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
  const classifier = new AttributeClassifier(size);
  classifier.train(set, order.slice(heldOut.length), species, o.classifierSteps);
  const predictReal = (indices: number[]) => chunked(indices, 64, (c) => {
    const x = set.centred(c);
    const p = classifier.predict(x);
    x.dispose();
    return p.features.map((features, k) => ({ features, labels: p.labels[k] }));
  });
  const heldOutPredictions = predictReal(heldOut);
  const real = new Map(heldOut.map((i, k) => [i, heldOutPredictions[k]]));
  const accuracy = Object.fromEntries(ATTRIBUTE_NAMES.map((a) => [a, heldOut.filter((i) => real.get(i)!.labels[a] === labelsOf(species.get(set.samples[i].classId)!)[a]).length / heldOut.length])) as Record<Attribute, number>;

  // caption fidelity: captions of held-out images, drawn with random z; the same captions' real images as the ceiling
  o.log('caption fidelity ...');
  const byClass = new Map<string, number[]>();
  for (const i of heldOut) byClass.set(set.samples[i].classId, [...(byClass.get(set.samples[i].classId) ?? []), i]);
  const requests = [...byClass].flatMap(([cls, imgs]) => Array.from({ length: o.perClass }, (_, k) => {
    const i = imgs[k % imgs.length];
    const caption = rng.pick(set.samples[i].captions);
    return { i, cls, caption, named: namedAttributes(caption, species.get(cls)!), truth: labelsOf(species.get(cls)!) };
  }));
  const generated = chunked(requests, 64, (c) => {
    const h = synth.embed(c.map((r) => r.caption));
    const imgs = synth.draw(h.map((hv) => ({ z: rng.normals(synth.config.zDim), h: hv })));
    const x = fromBytes(imgs, size);
    const p = classifier.predict(x);
    x.dispose();
    return p.features.map((features, k) => ({ features, labels: p.labels[k] }));
  });
  const rows = (which: 'gen' | 'real', wantUnseen: boolean) =>
    requests
      .map((r, k) => ({ ...r, predicted: which === 'gen' ? generated[k].labels : real.get(r.i)!.labels }))
      .filter((r) => unseen.has(r.cls) === wantUnseen);
  const fidelity = { generatedTrain: score(rows('gen', false)), generatedUnseen: score(rows('gen', true)), realTrain: score(rows('real', false)), realUnseen: score(rows('real', true)) };

  // Fréchet distance in the classifier's feature space, generated (training-class captions) vs held-out real
  const realFeatures = heldOut.map((i) => real.get(i)!.features);
  const genFeatures = generated.filter((_, k) => !unseen.has(requests[k].cls)).map((g) => g.features).slice(0, o.fidImages);
  const half = Math.floor(realFeatures.length / 2);
  const frechet = {
    generatedVsReal: frechetDistance(genFeatures, realFeatures.slice(0, Math.max(half, 2))),
    realVsReal: frechetDistance(realFeatures.slice(half), realFeatures.slice(0, half)),
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

  o.log('sheets ...');
  const firstCaption = (cls: string) => set.samples[byClass.get(cls)![0]].captions[0];
  const trainCls = [...byClass.keys()].filter((c) => !unseen.has(c));
  const unseenCls = [...byClass.keys()].filter((c) => unseen.has(c));
  const sheetCaptions = [...trainCls.slice(0, 4), ...unseenCls.slice(0, 4)].map(firstCaption);
  const sheets = [
    await samplesSheet(o.out, synth, sheetCaptions, 1),
    await captionInterpolationSheet(o.out, synth, [[sheetCaptions[0], sheetCaptions[1]], [sheetCaptions[2], sheetCaptions[3]], [sheetCaptions[4], sheetCaptions[5]], [sheetCaptions[6], sheetCaptions[7]]], 2),
    await noiseInterpolationSheet(o.out, synth, sheetCaptions.slice(0, 4), 3),
    await styleTransferSheet(o.out, synth, realBytes.slice(0, 6), sheetCaptions.slice(0, 6)),
  ];

  const report: EvalReport = { checkpoint: o.checkpoint, steps: synth.meta.steps, classifierAccuracyHeldOut: accuracy, fidelity, frechet, style, sheets };
  await writeFile(join(o.out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFile(join(o.out, 'report.md'), renderReport(report, sheetCaptions));
  synth.dispose();
  return report;
}

const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);

export function renderReport(r: EvalReport, captions: string[]): string {
  const f = r.fidelity;
  const row = (a: Attribute | 'all') => `| ${a} | ${pct(f.generatedTrain[a])} | ${pct(f.realTrain[a])} | ${pct(f.generatedUnseen[a])} | ${pct(f.realUnseen[a])} |`;
  const ratio = (a: Attribute) => (f.generatedTrain[a] !== null && f.realTrain[a] ? (f.generatedTrain[a]! / f.realTrain[a]!).toFixed(2) : 'n/a');
  return `# Evaluation of ${r.checkpoint}

Steps trained: text ${r.steps.text}, GAN ${r.steps.gan}, style ${r.steps.style}.

## Caption fidelity
Share of the attributes a caption names that the attribute classifier sees in the image (generated from
the caption with random z, and the real image the caption describes: the ceiling). Unseen = the test
classes, never shown to the GAN (zero-shot).

| attribute | generated, training classes | real, training classes | generated, unseen classes | real, unseen classes |
| --- | --- | --- | --- | --- |
${(['petalColour', 'centreColour', 'petalCount', 'petalShape', 'centreSize', 'all'] as const).map(row).join('\n')}

Petal colour fidelity relative to the real-image ceiling: ${ratio('petalColour')} (training classes).
Classifier accuracy on held-out real images: ${ATTRIBUTE_NAMES.map((a) => `${a} ${pct(r.classifierAccuracyHeldOut[a])}`).join(', ')}.

## Fréchet distance (classifier feature space, 128-d)
| generated vs real | real vs real (floor) |
| --- | --- |
| ${r.frechet.generatedVsReal.toFixed(2)} | ${r.frechet.realVsReal.toFixed(2)} |

## Style (section 5.3)
ROC AUC of cosine similarity, same vs different cluster, on held-out real images.

| vector | background colour | pose (position) |
| --- | --- | --- |
| style encoder S(x) | ${r.style.backgroundAuc.toFixed(3)} | ${r.style.poseAuc.toFixed(3)} |
| caption embedding phi(t) (baseline) | ${r.style.captionBackgroundAuc.toFixed(3)} | ${r.style.captionPoseAuc.toFixed(3)} |

## Sheets
${r.sheets.map((s) => `- ![${s}](${s})`).join('\n')}

Captions of the sheets' rows (the first four from training classes, the last four unseen):
${captions.map((c, i) => `${i + 1}. ${c}`).join('\n')}
`;
}
