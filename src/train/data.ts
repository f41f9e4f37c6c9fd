/**
 * A data set in memory for training: images of the training classes at load size (76 for 64, as the
 * paper resizes before random 64-crops), their captions as character ids, and batch makers for each stage.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { type TensorEntry, readTensors, writeTensors } from '../model/tensor-file.ts';
import { type DatasetIndex, type Sample, indexDataset, loadRgb } from '../data/layout.ts';
import { CENTRE_COLOURS, PETAL_COLOURS } from '../data/flowers.ts';
import { Progress } from '../cli/progress.ts';
import { encodeCaption } from '../model/networks.ts';
import type { ModelConfig } from '../model/config.ts';
import type { Rng } from '../model/random.ts';
import { type HostBatch, type HostTensor, host } from './shards.ts';

/** Where training crops the real images: anywhere (the paper's augmentation) or at the centre. */
export const REAL_CROPS = ['random', 'centre'] as const;
export type RealCrop = (typeof REAL_CROPS)[number];

/** Captions averaged into one training text vector (4 in the authors' code: docs/method.md §phi). */
const CAPTIONS_PER_VECTOR = 4;

export const loadSizeFor = (imageSize: number): number => Math.round((imageSize * 76) / 64);

export class TrainingSet {
  private constructor(
    readonly samples: Sample[],
    readonly images: Uint8Array[],
    readonly loadSize: number,
    readonly imageSize: number,
    private readonly byClass: Map<string, number[]>,
  ) {}

  /** The training classes' images (or every class's, for the evaluation's classifier). */
  static async load(
    dir: string,
    imageSize: number,
    log: (s: string) => void = () => {},
    classes: 'train' | 'all' = 'train',
  ): Promise<TrainingSet> {
    const index: DatasetIndex = await indexDataset(dir);
    const train = new Set(index.trainClasses);
    const samples = classes === 'all' ? index.samples : index.samples.filter((s) => train.has(s.classId));
    if (samples.length === 0) throw new Error(`${dir}: no images in the training classes`);
    const loadSize = loadSizeFor(imageSize);
    const images: Uint8Array[] = [];
    const progress = new Progress('load', samples.length);
    for (const s of samples) {
      images.push(await loadRgb(s.imagePath, loadSize));
      progress.update(images.length);
    }
    progress.finish();
    const byClass = new Map<string, number[]>();
    samples.forEach((s, i) => byClass.set(s.classId, [...(byClass.get(s.classId) ?? []), i]));
    log(
      `data: ${samples.length} images of ${byClass.size} classes (${index.trainClasses.length} training, ${index.testClasses.length} unseen)`,
    );
    return new TrainingSet(samples, images, loadSize, imageSize, byClass);
  }

  get classes(): string[] {
    return [...this.byClass.keys()];
  }

  /**
   * As training sees them, to [-1, 1]: [B, S, S, 3]: each image flipped horizontally at random, and cropped to
   * imageSize at a random place (`random`, the paper's) or at the centre (`centre`, as the evaluation's real set).
   */
  augmented(indices: number[], rng: Rng, crop: RealCrop): HostTensor {
    return this.crop(indices, rng, crop === 'random');
  }

  /** Centre crop to imageSize, to [-1, 1] (evaluation). */
  centred(indices: number[]): tf.Tensor4D {
    const { data, shape } = this.crop(indices, null, false);
    return tf.tensor4d(data, shape as [number, number, number, number]);
  }

  /** Crops at random places where `rng` and `moved`, else at the centre; flips at random where `rng`. */
  private crop(indices: number[], rng: Rng | null, moved: boolean): HostTensor {
    const s = this.imageSize;
    const l = this.loadSize;
    const out = new Float32Array(indices.length * s * s * 3);
    indices.forEach((idx, b) => {
      const img = this.images[idx];
      const ox = rng && moved ? rng.int(l - s + 1) : Math.floor((l - s) / 2);
      const oy = rng && moved ? rng.int(l - s + 1) : Math.floor((l - s) / 2);
      const flip = rng ? rng.uniform() < 0.5 : false;
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++) {
          const src = ((oy + y) * l + ox + (flip ? s - 1 - x : x)) * 3;
          const dst = ((b * s + y) * s + x) * 3;
          out[dst] = img[src] / 127.5 - 1;
          out[dst + 1] = img[src + 1] / 127.5 - 1;
          out[dst + 2] = img[src + 2] / 127.5 - 1;
        }
    });
    return host(out, [indices.length, s, s, 3]);
  }

  /** What each caption of each image says of each attribute, where set (`labelCaptions`). */
  private captionLabels: Int32Array[][] | null = null;

  /** Labels every caption (a class index per attribute, -1 where it names none): text batches then carry them. */
  labelCaptions(label: (caption: string, classId: string) => Int32Array): void {
    this.captionLabels = this.samples.map((s) => s.captions.map((c) => label(c, s.classId)));
  }

  /** One image each of up to `size` distinct classes, and one of its captions (and its labels): the DS-SJE batch. */
  textBatch(size: number, config: ModelConfig, rng: Rng): HostBatch {
    const classes = rng.shuffle(this.classes).slice(0, size);
    const picks = classes.map((c) => rng.pick(this.byClass.get(c)!));
    const { alphabet, maxLength } = config.text;
    const ids = new Int32Array(picks.length * maxLength);
    const chosen = picks.map((i) => rng.int(this.samples[i].captions.length));
    picks.forEach((i, k) =>
      ids.set(encodeCaption(this.samples[i].captions[chosen[k]], alphabet, maxLength), k * maxLength),
    );
    const images = this.augmented(picks, rng, 'random');
    const labelled = this.captionLabels;
    const labels = labelled && picks.map((i, k) => labelled[i][chosen[k]]);
    return {
      images,
      ids: host(ids, [picks.length, maxLength]),
      labels: labels && host(Int32Array.from(labels.flatMap((l) => [...l])), [picks.length, labels[0].length]),
    };
  }

  /** A random index of another class than `i` (the mismatching text of GAN-CLS). */
  otherClass(i: number, rng: Rng): number {
    if (this.byClass.size < 2) return rng.int(this.samples.length);
    for (;;) {
      const j = rng.int(this.samples.length);
      if (this.samples[j].classId !== this.samples[i].classId) return j;
    }
  }
}

/** The colour words of the data set's captions: petal, centre and tip colours. */
export const COLOUR_WORDS: readonly string[] = [...new Set<string>([...PETAL_COLOURS, ...CENTRE_COLOURS])];

/** The colour words an image's captions name, the most often named first (ties in the order first named). */
function namedColours(captions: string[]): string[] {
  const named = new Map<string, number>();
  for (const c of captions)
    for (const w of new Set(c.toLowerCase().split(/[^a-z]+/)))
      if (COLOUR_WORDS.includes(w)) named.set(w, (named.get(w) ?? 0) + 1);
  return [...named].sort((a, b) => b[1] - a[1]).map(([w]) => w);
}

/**
 * The images grouped by the colour their captions name most often (the petals'), for sampling balanced by colour
 * (--colour-balance); images whose captions name no colour are left out.
 */
export function colourGroups(byImage: string[][]): number[][] {
  const groups = new Map<string, number[]>();
  byImage.forEach((captions, i) => {
    const [colour] = namedColours(captions);
    if (colour === undefined) return;
    if (!groups.has(colour)) groups.set(colour, []);
    groups.get(colour)!.push(i);
  });
  return [...groups.values()];
}

/** How `recolour` edits an image's captions. */
export const RECOLOURINGS = ['swap', 'replace'] as const;
export type Recolouring = (typeof RECOLOURINGS)[number];

/**
 * An image's captions edited to describe it wrongly in the same words (the wrong text of --hard-negatives):
 * `swap` exchanges the two colours its captions name most often (the petals' and the centre's, or the tips' where
 * more captions name them: which colour goes with which part), `replace` puts a petal colour they never name in
 * place of the one named most often (the petals': near and rare colours). Every caption gets the same edit, so a
 * mean of 4 is one coherent wrong description; whole words only, ties in the order first named. Where the captions
 * name one colour, `swap` replaces; where they name none (or, to replace, every petal colour), [] (no wrong text of
 * this kind).
 */
export function recolour(captions: string[], edit: Recolouring, rng: Rng): string[] {
  const named = namedColours(captions);
  const [first, second] = named;
  const unnamed = PETAL_COLOURS.filter((w) => !named.includes(w));
  const swap = edit === 'swap' && second !== undefined;
  if (first === undefined || (!swap && unnamed.length === 0)) return [];
  const to = swap
    ? new Map([
        [first, second],
        [second, first],
      ])
    : new Map([[first, rng.pick(unnamed)]]);
  return captions.map((c) => c.replace(/[A-Za-z]+/g, (w) => to.get(w.toLowerCase()) ?? w));
}

/** phi(t) of every caption of every image, computed once: phi is frozen while the GAN trains. */
export class CaptionEmbeddings {
  constructor(
    readonly table: Float32Array[][],
    readonly dim: number,
  ) {}

  /**
   * phi(t) of every caption, read from `cache` when it was computed for these captions by a text encoder
   * with these weights, else computed and written there: every run that starts from one text encoder
   * (eval:variants) embeds the data set once.
   */
  static async cached(
    byImage: string[][],
    embed: (captions: string[]) => Float32Array[],
    cache: string,
    textWeights: Uint8Array[],
  ): Promise<CaptionEmbeddings> {
    const captions = byImage.flat();
    const hash = createHash('sha256');
    for (const w of textWeights) hash.update(w);
    const id = hash
      .update(byImage.map((own) => own.length).join(','))
      .update(captions.join('\n'))
      .digest('hex');
    const entries = await readFile(`${cache}.json`, 'utf8').then(
      (t) => JSON.parse(t) as { id: string; tensors: TensorEntry[] },
      () => null,
    );
    if (entries?.id === id) {
      const flat = (await readTensors(`${cache}.bin`, entries.tensors)).get('embeddings')!;
      const dim = entries.tensors[0].shape[1];
      let k = 0;
      return new CaptionEmbeddings(
        byImage.map((own) => own.map(() => flat.subarray(dim * k, dim * ++k))),
        dim,
      );
    }
    const computed = CaptionEmbeddings.compute(byImage, embed);
    const flat = new Float32Array(captions.length * computed.dim);
    computed.table.flat().forEach((v, k) => flat.set(v, k * computed.dim));
    const tensors = await writeTensors(
      `${cache}.bin`,
      [{ name: 'embeddings', shape: [captions.length, computed.dim], values: flat }],
      'float32',
    );
    await writeFile(`${cache}.json`, JSON.stringify({ id, tensors }));
    return computed;
  }

  /** phi(t) of each image's captions (`byImage[i]`: image i's). */
  static compute(byImage: string[][], embed: (captions: string[]) => Float32Array[]): CaptionEmbeddings {
    const captions = byImage.flatMap((own, i) => own.map((c, k) => ({ c, i, k })));
    const table: Float32Array[][] = byImage.map((own) => new Array(own.length));
    const progress = new Progress('embed captions', captions.length);
    let dim = 0;
    for (let o = 0; o < captions.length; o += 256) {
      const chunk = captions.slice(o, o + 256);
      const vectors = embed(chunk.map((x) => x.c));
      chunk.forEach((x, j) => (table[x.i][x.k] = vectors[j]));
      dim = vectors[0].length;
      progress.update(o + chunk.length);
    }
    progress.finish();
    return new CaptionEmbeddings(table, dim);
  }

  /**
   * The captions' mean embedding and spread (root mean square distance to it, per entry): what `centred` conditioning
   * divides by.
   */
  centre(): { mean: Float32Array; scale: number } {
    const mean = new Float32Array(this.dim);
    const all = this.table.flat();
    for (const v of all) for (let d = 0; d < this.dim; d++) mean[d] += v[d] / all.length;
    let sq = 0;
    for (const v of all) for (let d = 0; d < this.dim; d++) sq += (v[d] - mean[d]) ** 2;
    return { mean, scale: Math.sqrt(sq / (all.length * this.dim)) };
  }

  /**
   * How far a `vector` lies from the captions' mean, relative to one caption's phi: the root of
   * E||vector(i) - m||^2 / E||phi - m||^2 over images i and their captions, exactly (4 picks with replacement:
   * ||m_i - m||^2 + var_i / 4 against ||m_i - m||^2 + var_i, m_i and var_i image i's captions' mean and spread).
   * G trains on `vector`s and is served one caption: ModelConfig.conditioningGain. `mean`: centre()'s, where the caller
   * has it.
   */
  trainingGain(mean = this.centre().mean): number {
    let trained = 0;
    let single = 0;
    for (const own of this.table) {
      const m = new Float32Array(this.dim);
      for (const v of own) for (let d = 0; d < this.dim; d++) m[d] += v[d] / own.length;
      let between = 0;
      let within = 0;
      for (let d = 0; d < this.dim; d++) between += (m[d] - mean[d]) ** 2;
      for (const v of own) for (let d = 0; d < this.dim; d++) within += (v[d] - m[d]) ** 2 / own.length;
      trained += between + within / CAPTIONS_PER_VECTOR;
      single += between + within;
    }
    return Math.sqrt(trained / single);
  }

  /** Mean of 4 random caption embeddings of image i (docs/method.md §phi). */
  vector(i: number, rng: Rng): Float32Array {
    const own = this.table[i];
    const out = new Float32Array(this.dim);
    for (let k = 0; k < CAPTIONS_PER_VECTOR; k++) {
      const v = rng.pick(own);
      for (let d = 0; d < this.dim; d++) out[d] += v[d] / CAPTIONS_PER_VECTOR;
    }
    return out;
  }
}

function stack(rows: Float32Array[], dim: number): HostTensor {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(r, i * dim));
  return host(out, [rows.length, dim]);
}

const normals = (rng: Rng, rows: number, dim: number): HostTensor => host(rng.normals(rows * dim), [rows, dim]);

export interface GanBatchOptions {
  size: number;
  zDim: number;
  interpolate: boolean;
  /** A second noise for the first half (the mode-seeking term). */
  pairNoise: boolean;
  /** Conditioning-augmentation noise of this width for every G input (0: none). */
  epsDim: number;
  /** DiffAugment translations of up to this many pixels for what D sees (0: none; drawn last, so 0 changes no draw). */
  translate: number;
  /** Where the real images are cropped. */
  crop: RealCrop;
  /**
   * The share of wrong texts that are the image's own captions recoloured (`recoloured`, one table a kind of edit,
   * picked at random) rather than another class's captions (0: the paper's; draws nothing more).
   */
  hardNegatives: number;
  recoloured: CaptionEmbeddings[];
  /**
   * The share of images picked by colour (a colour group of `colourGroups` at random, then an image of it) rather
   * than uniformly (0: uniformly, the paper's; draws nothing more).
   */
  colourBalance: number;
  colourGroups: number[][];
}

/**
 * Real images, right and wrong caption vectors (wrong: another class's, or a share of them the image's own recoloured),
 * noise, (for GAN-INT) interpolated captions, (pairNoise) a second noise
 * for the first half, and (epsDim) conditioning noise: GanBatch's fields.
 */
export function ganBatch(set: TrainingSet, emb: CaptionEmbeddings, o: GanBatchOptions, rng: Rng): HostBatch {
  const { size, zDim } = o;
  const picks = Array.from({ length: size }, () =>
    o.colourBalance > 0 && rng.uniform() < o.colourBalance
      ? rng.pick(rng.pick(o.colourGroups))
      : rng.int(set.samples.length),
  );
  const h = picks.map((i) => emb.vector(i, rng));
  const hWrong = picks.map((i) => {
    const edited = o.hardNegatives > 0 && rng.uniform() < o.hardNegatives ? rng.pick(o.recoloured) : null;
    return edited && edited.table[i].length > 0 ? edited.vector(i, rng) : emb.vector(set.otherClass(i, rng), rng);
  });
  const half = Math.max(1, Math.floor(size / 2));
  const hInt = o.interpolate
    ? Array.from({ length: half }, () => {
        const a = h[rng.int(size)];
        const b = h[rng.int(size)];
        return a.map((v, d) => 0.5 * v + 0.5 * b[d]);
      })
    : null;
  const eps = o.epsDim > 0;
  return {
    real: set.augmented(picks, rng, o.crop),
    h: stack(h, emb.dim),
    hWrong: stack(hWrong, emb.dim),
    z: normals(rng, size, zDim),
    hInt: hInt ? stack(hInt, emb.dim) : null,
    zInt: hInt ? normals(rng, half, zDim) : null,
    zPair: o.pairNoise ? normals(rng, half, zDim) : null,
    eps: eps ? normals(rng, size, o.epsDim) : null,
    epsInt: eps && hInt ? normals(rng, half, o.epsDim) : null,
    epsPair: eps && o.pairNoise ? normals(rng, half, o.epsDim) : null,
    shift: o.translate > 0 ? shifts(rng, size, 4, o.translate) : null,
    shiftInt: o.translate > 0 && hInt ? shifts(rng, half, 2, o.translate) : null,
  };
}

const shifts = (rng: Rng, rows: number, width: number, max: number): HostTensor =>
  host(
    Int32Array.from({ length: rows * width }, () => rng.int(2 * max + 1) - max),
    [rows, width],
  );

/** What sets how the served model draws its noise. */
type ServedNoise = Pick<ModelConfig, 'zDim' | 'noiseScale' | 'projDim' | 'conditioningNoise'>;

/**
 * Noise and caption embeddings, StyleBatch's fields, as the served model draws them: z = `noiseScale` x N(0, I),
 * and the conditioning noise eps = `conditioningNoise` x N(0, I) where it samples its conditioning (else null);
 * for the style encoder, each embedding the mean of 4 captions' as G trained on (`single` false); for standing
 * statistics, one caption's as the service draws (`single`).
 */
export function styleBatch(
  set: TrainingSet,
  emb: CaptionEmbeddings,
  size: number,
  { zDim, noiseScale, projDim, conditioningNoise }: ServedNoise,
  rng: Rng,
  single = false,
): HostBatch {
  const picks = Array.from({ length: size }, () => rng.int(set.samples.length));
  const h = stack(
    picks.map((i) => (single ? rng.pick(emb.table[i]) : emb.vector(i, rng))),
    emb.dim,
  );
  const z = rng.normals(size * zDim).map((v) => v * noiseScale);
  const eps = conditioningNoise > 0 ? rng.normals(size * projDim).map((v) => v * conditioningNoise) : null;
  return { h, z: host(z, [size, zDim]), eps: eps && host(eps, [size, projDim]) };
}
