/**
 * The training run: phi by DS-SJE, then the GAN (Algorithm 1, the chosen variant), then the style
 * encoder, each stage resumable. A run folder holds checkpoint/ (rewritten every N steps, on Ctrl-C and
 * at the end), samples/ (PNG sheets: fixed captions x fixed z) and log.jsonl (losses).
 */
import { appendFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Progress } from '../cli/progress.ts';
import { captionLabels, readSpecies } from '../data/attributes.ts';
import { encodePng, tile } from '../images/png.ts';
import { Adam } from '../model/adam.ts';
import { loadCheckpoint, saveCheckpoint } from '../model/checkpoint.ts';
import { type CheckpointMeta, type StageSteps, readCheckpointMeta } from '../model/checkpoint-meta.ts';
import { type ModelConfig, latentDim, validateModelConfig } from '../model/config.ts';
import type { BackendName } from '../model/backends.ts';
import { type AdversarialLoss, type Variant, usesInterpolation, usesWrongText } from '../model/losses.ts';
import { type Model, buildModel, disposeModel, servedGenerator } from '../model/model.ts';
import { Rng } from '../model/random.ts';
import { Synthesizer, servedConditioning } from '../model/synthesizer.ts';
import {
  COLOUR_WORDS,
  CaptionEmbeddings,
  RECOLOURINGS,
  type RealCrop,
  TrainingSet,
  colourGroups,
  ganBatch,
  recolour,
  styleBatch,
} from './data.ts';
import { type HostBatch, Shards, checkShardable, textRows, toTensors } from './shards.ts';
import { type StepOptions, type StepKind, type StyleBatch, standingStats, trainedParams, updateEma } from './steps.ts';

export const STAGES = ['text', 'gan', 'style'] as const;
export type Stage = (typeof STAGES)[number];

export interface TrainOptions {
  data: string;
  out: string;
  stages: Stage[];
  variant: Variant;
  /** Total steps per stage; a resumed run continues to these. */
  steps: StageSteps;
  batch: number;
  lr: number;
  /** Halve the learning rate every this many steps of a stage (0: never). */
  lrDecayEvery: number;
  /** Weight of the mode-seeking term in G's loss (0: the paper's objective). */
  diversity: number;
  /** The adversarial loss: the paper's cross-entropy, or hinge. */
  objective: AdversarialLoss;
  /** Decay of the moving average of G's weights that is served (0: none, serve G itself). */
  ema: number;
  /** DiffAugment: D sees every image, real and generated, moved by up to this fraction of its size (0: off). */
  dTranslate: number;
  /** Where the real images are cropped (flipped at random either way). */
  realCrop: RealCrop;
  /** The share of D's wrong texts that are the image's own captions recoloured (0: the paper's, another class's). */
  hardNegatives: number;
  /** The share of GAN batches' images picked balanced by their captions' petal colour (0: uniformly, the paper's). */
  colourBalance: number;
  /** Weight of G's caption-matching term, scored by the frozen DS-SJE image encoder (0: off, the paper's). */
  textMatch: number;
  /**
   * Weight of the text stage's attribute term beside DS-SJE (0: off, the paper's): phi keeps each attribute a caption
   * names apart from the others. Reads the procedural data set's species.json.
   */
  textAttributes: number;
  /** Passes of `batch` that set the served G's batch-norm statistics after the GAN stage (0: keep training's). */
  standingStats: number;
  /**
   * The served noise scale s (ModelConfig.noiseScale: a seed's image is G(s z, h)): standing statistics and S are
   * made at it, the GAN trains at 1. Absent: the checkpoint's, or `model`'s for a new run.
   */
  noiseScale?: number;
  /**
   * The served conditioning noise (ModelConfig.conditioningNoise; `augmented` conditioning): made at, and set, as
   * noiseScale is. Absent: the checkpoint's, or `model`'s for a new run.
   */
  conditioningNoise?: number;
  sampleEvery: number;
  checkpointEvery: number;
  seed: number;
  model: ModelConfig;
  /** Threads computing shards (this one included), and shards per batch: the result depends on shards only. */
  threads: number;
  shards: number;
  backend: BackendName;
  /** Where phi(t) of the data set's captions is cached (default RUN/embeddings.{json,bin}). */
  embeddingsCache?: string;
  log: (line: string) => void;
}

/**
 * The paper's training choices (GAN-INT-CLS, cross-entropy, Adam at a constant 2e-4, G itself served with its
 * training statistics, D seeing images as they are): what a run changes from.
 */
export const PAPER_TRAINING = {
  variant: 'gan-int-cls',
  lr: 2e-4,
  lrDecayEvery: 0,
  diversity: 0,
  objective: 'bce',
  ema: 0,
  standingStats: 0,
  dTranslate: 0,
  realCrop: 'random',
  hardNegatives: 0,
  colourBalance: 0,
  textMatch: 0,
  textAttributes: 0,
} as const satisfies Partial<TrainOptions>;

const SAMPLE_CAPTIONS = 8;
const SAMPLE_NOISES = 8;

type Optimizers = Record<'text' | 'g' | 'd' | 'style', Adam>;

function optimizersFor(model: Model, lr: number): Optimizers {
  return {
    text: new Adam(trainedParams(model, 'text'), lr),
    g: new Adam(trainedParams(model, 'g'), lr),
    d: new Adam(trainedParams(model, 'd'), lr),
    style: new Adam(trainedParams(model, 'style'), lr),
  };
}

const fmt = (l: Record<string, number>) =>
  Object.entries(l)
    .map(([k, v]) => `${k} ${v.toFixed(3)}`)
    .join(' ');

/**
 * Stores the training captions' mean and spread in G (centred and augmented conditioning), once, and serves captions
 * as far from the mean as G's training inputs lie (ModelConfig.conditioningGain).
 */
function centreConditioning(model: Model, emb: CaptionEmbeddings): void {
  const { mean, scale } = emb.centre();
  model.config = validateModelConfig({ ...model.config, conditioningGain: emb.trainingGain(mean) });
  for (const g of [model.generator, model.ema]) {
    if (!g) continue;
    g.params.stats.get('cond.mean')!.assign(tf.tensor1d(mean));
    g.params.stats.get('cond.scale')!.assign(tf.tensor1d([scale]));
  }
}

/** Where a run stands: its networks, optimizers, steps and seconds per stage, and its random stream. */
interface RunState {
  model: Model;
  optimizers: Optimizers;
  steps: StageSteps;
  wall: StageSteps;
  rng: Rng;
  /** The standing statistics the checkpoint was made with (0 for a new run). */
  standingStats: number;
}

/** What a resumed run must be given as it was: its options by command-line flag. */
const RUN_OPTIONS = {
  variant: '--variant',
  batch: '--batch',
  lr: '--lr',
  lrDecayEvery: '--lr-decay-every',
  diversity: '--diversity',
  objective: '--loss',
  ema: '--ema',
  dTranslate: '--d-translate',
  realCrop: '--real-crop',
  hardNegatives: '--hard-negatives',
  colourBalance: '--colour-balance',
  textMatch: '--text-match',
  textAttributes: '--text-attributes',
  shards: '--shards',
  seed: '--seed',
} as const satisfies Partial<Record<keyof TrainOptions, string>>;
const ARCHITECTURE = {
  imageSize: '--size',
  ngf: '--ngf',
  ndf: '--ndf',
  nef: '--nef',
  zDim: '--z-dim',
  embedDim: '--embed-dim',
  upsampling: '--upsampling',
  conditioning: '--conditioning',
} as const satisfies Partial<Record<keyof ModelConfig, string>>;

/**
 * Refuses to resume `meta`'s run with other options or another architecture than it was trained with (they would
 * be ignored, or, for --ema, drop its moving average): one message naming each difference. An option a run's record
 * lacks (added after it was made) was the paper's then where the paper has one (PAPER_TRAINING), else is not compared.
 */
export function checkResumable(o: TrainOptions, meta: CheckpointMeta, dir: string): void {
  // a checkpoint without a record (eval:variants' starting point) is compared on its architecture only
  const was = (k: string) => meta.training && (meta.training[k] ?? (PAPER_TRAINING as Record<string, unknown>)[k]);
  const differences = [
    ...Object.entries(RUN_OPTIONS).map(([k, flag]) => [flag, was(k), o[k as keyof typeof RUN_OPTIONS]] as const),
    ...Object.entries(ARCHITECTURE).map(
      ([k, flag]) =>
        [flag, meta.model[k as keyof typeof ARCHITECTURE], o.model[k as keyof typeof ARCHITECTURE]] as const,
    ),
  ]
    .filter(([, before, now]) => before !== undefined && before !== now)
    .map(([flag, before, now]) => `${flag} ${String(before)} (this command: ${String(now)})`);
  if (differences.length)
    throw new Error(
      `${dir} was trained with ${differences.join(', ')}: resume it with the options it was trained with, or train into another --out`,
    );
  // G, its standing statistics and the conditioning's centre and gain are made on the encoder's embeddings
  const { text, gan, style } = meta.steps;
  if (gan > 0 && o.stages.includes('text') && o.steps.text > text)
    throw new Error(
      `${dir} has a generator trained on its caption encoder (${gan} GAN steps): training the encoder on ` +
        `(--text-steps ${o.steps.text}, it has ${text}) would leave the generator reading other embeddings; ` +
        `keep --text-steps ${text}, or train into another --out`,
    );
  // S inverts the served G, and the standing statistics are made once, before S: neither would follow G further
  if (style > 0 && o.stages.includes('gan') && o.steps.gan > gan)
    throw new Error(
      `${dir} has a style encoder trained on its generator (${style} style steps): training the generator on ` +
        `(--gan-steps ${o.steps.gan}, it has ${gan}) would leave the style encoder and the standing statistics ` +
        `made for the generator before; keep --gan-steps ${gan}, or train into another --out`,
    );
}

/** The run's checkpoint, resumed exactly (weights, optimizer moments, Rng), or a fresh model. */
async function resumeOrStart(o: TrainOptions, checkpointDir: string): Promise<RunState> {
  const withEma = o.ema > 0;
  const resumed = await stat(join(checkpointDir, 'checkpoint.json')).then(
    () => true,
    () => false,
  );
  if (!resumed) {
    const model = buildModel(o.model, o.seed, true, withEma);
    const zero = { text: 0, gan: 0, style: 0 };
    const optimizers = optimizersFor(model, o.lr);
    return { model, optimizers, steps: zero, wall: { ...zero }, rng: new Rng(o.seed), standingStats: 0 };
  }
  checkResumable(o, await readCheckpointMeta(checkpointDir), checkpointDir);
  const loaded = await loadCheckpoint(checkpointDir, true, withEma);
  const optimizers = optimizersFor(loaded.model, o.lr);
  for (const [name, state] of loaded.optimizers) optimizers[name as keyof Optimizers]?.load(state);
  const { steps } = loaded.meta;
  o.log(`resuming ${checkpointDir} at text ${steps.text}, gan ${steps.gan}, style ${steps.style} steps`);
  return {
    model: loaded.model,
    optimizers,
    steps,
    wall: loaded.meta.wallSeconds ?? { text: 0, gan: 0, style: 0 },
    rng: loaded.meta.rng ? Rng.fromState(loaded.meta.rng) : new Rng(o.seed),
    standingStats: Number(loaded.meta.training?.standingStats ?? 0),
  };
}

/**
 * A sheet writer: SAMPLE_CAPTIONS fixed captions (one a class) x SAMPLE_NOISES fixed noises (the served model's
 * latentDim), as one PNG in RUN/samples.
 */
function sampleSheets(o: TrainOptions, set: TrainingSet, synth: Synthesizer): (name: string) => Promise<void> {
  const { imageSize } = synth.config;
  const dim = latentDim(synth.config);
  const captions = set.classes
    .slice(0, SAMPLE_CAPTIONS)
    .map((c) => set.samples.find((s) => s.classId === c)!.captions[0]);
  const noise = new Rng(12345).normals(SAMPLE_NOISES * dim);
  const z = (k: number) => noise.subarray(k * dim, (k + 1) * dim);
  return async (name) => {
    const h = synth.embed(captions);
    const images = synth.draw(
      captions.flatMap((_, i) => Array.from({ length: SAMPLE_NOISES }, (_, k) => ({ z: z(k), h: h[i] }))),
    );
    const sheet = tile(images, imageSize, SAMPLE_NOISES);
    await writeFile(
      join(o.out, 'samples', `${name}.png`),
      encodePng(sheet.rgb, sheet.width, sheet.height, { captions: captions.join('\n') }),
    );
  };
}

/** How a run sets the served model's noise: the config field, its option, its name in messages. */
const SERVED_NOISE = [
  { field: 'noiseScale', option: '--noise-scale', name: 'noise scale' },
  { field: 'conditioningNoise', option: '--conditioning-noise', name: 'conditioning noise' },
] as const;

/**
 * Sets the run's served noise scale and conditioning noise. Standing statistics and S are made at them, so on a run
 * whose GAN has trained each is taken only where this call redoes those: before S has trained, with the style
 * stage to run and standing statistics on if the checkpoint had them.
 */
function setServedNoise(o: TrainOptions, { model, steps, standingStats }: RunState): void {
  for (const { field, option, name } of SERVED_NOISE) {
    const value = o[field];
    if (value === undefined || value === model.config[field]) continue;
    const refuse = (why: string) => {
      throw new Error(`${option} ${value}: ${why}`);
    };
    if (field === 'conditioningNoise' && value > 0 && model.config.conditioning !== 'augmented')
      refuse(`needs --conditioning augmented (this run's is ${model.config.conditioning})`);
    if (steps.style > 0)
      refuse(
        `this run's style encoder has trained at ${name} ${model.config[field]}; start a new run (or resume without ${option})`,
      );
    if (steps.gan > 0 && (!o.stages.includes('style') || o.steps.style === 0))
      refuse(`standing statistics and the style encoder are made at the ${name}: run the style stage too`);
    if (steps.gan > 0 && o.standingStats === 0 && standingStats > 0)
      refuse(`this run had standing statistics: give --standing-stats ${standingStats} to redo them at the ${name}`);
    model.config = validateModelConfig({ ...model.config, [field]: value });
  }
}

/** D's largest shift in pixels for --d-translate at this size; a fraction that moves no pixel is refused. */
function translatePixels(fraction: number, size: number): number {
  const pixels = Math.round(fraction * size);
  if (fraction > 0 && pixels === 0)
    throw new Error(`--d-translate ${fraction} moves no pixel at ${size}x${size}: use at least ${0.5 / size}`);
  return pixels;
}

/** Sets up the run, then one loop per stage (runStage): text encoder, GAN, style encoder; checkpoints throughout. */
export async function train(o: TrainOptions): Promise<CheckpointMeta> {
  const checkpointDir = join(o.out, 'checkpoint');
  await mkdir(join(o.out, 'samples'), { recursive: true });
  const run = await resumeOrStart(o, checkpointDir);
  const { model, optimizers, steps, wall, rng } = run;
  try {
    setServedNoise(o, run);
  } catch (err) {
    disposeModel(model);
    throw err;
  }
  if (o.hardNegatives > 0 && !usesWrongText(o.variant))
    throw new Error(`--hard-negatives: ${o.variant} shows D no wrong text (use gan-cls or gan-int-cls)`);
  const halves = usesInterpolation(o.variant) || o.diversity > 0;
  checkShardable(o.batch, o.shards, halves);
  const translate = translatePixels(o.dTranslate, model.config.imageSize);
  const set = await TrainingSet.load(o.data, model.config.imageSize, o.log);
  const captions = set.samples.map((s) => s.captions);
  const groups = colourGroups(captions);
  if (o.colourBalance > 0 && groups.length === 0)
    throw new Error(`--colour-balance: no caption in ${o.data} names a colour (${COLOUR_WORDS.join(', ')})`);
  const textSize =
    o.stages.includes('text') && steps.text < o.steps.text ? textRows(o.batch, set.classes.length, o.shards) : 0;
  if (textSize > 0 && o.textAttributes > 0) {
    const { species } = await readSpecies(o.data, '--text-attributes');
    set.labelCaptions((caption, classId) => {
      const s = species.get(classId);
      if (!s) throw new Error(`--text-attributes: ${o.data}/species.json has no class ${classId}`);
      return captionLabels(caption, s);
    });
  }
  const shards = await Shards.start(model, { threads: o.threads, count: o.shards, backend: o.backend });
  o.log(
    `training on ${shards.threadCount} thread${shards.threadCount > 1 ? 's' : ''}, ${o.shards} shard${o.shards > 1 ? 's' : ''} of ${o.batch / o.shards} per batch`,
  );

  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    o.log('\nstopping: writing a checkpoint (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const save = async () =>
    saveCheckpoint(
      checkpointDir,
      model,
      {
        steps: { ...steps },
        wallSeconds: { ...wall },
        rng: rng.save(),
        training: {
          ...o,
          noiseScale: model.config.noiseScale,
          conditioningNoise: model.config.conditioningNoise,
          log: undefined,
          model: undefined,
        },
      },
      { optimizers },
    );
  const stepOptions: StepOptions = {
    variant: o.variant,
    diversity: o.diversity,
    objective: o.objective,
    textMatch: o.textMatch,
    textAttributes: o.textAttributes,
  };
  const setLr = (opt: Adam, step: number) => {
    opt.lr = o.lr * (o.lrDecayEvery > 0 ? 0.5 ** Math.floor(step / o.lrDecayEvery) : 1);
  };
  const step = async (kind: StepKind, opt: Adam, batch: HostBatch, done: number) => {
    setLr(opt, done);
    return shards.step(kind, opt, batch, stepOptions);
  };

  /** One stage: set-up, one loop of `oneStep`, progress, losses every 10 steps, checkpoints, `after` each step. */
  const runStage = async (
    stage: Stage,
    label: string,
    oneStep: (done: number) => Promise<Record<string, number>>,
    shown: (l: Record<string, number>) => Record<string, number>,
    after?: (done: number) => Promise<void>,
  ) => {
    if (!o.stages.includes(stage) || steps[stage] >= o.steps[stage] || stop) return;
    const progress = new Progress(label, o.steps[stage], steps[stage]);
    let lap = Date.now();
    while (steps[stage] < o.steps[stage] && !stop) {
      const losses = await oneStep(steps[stage]);
      steps[stage]++;
      const now = Date.now();
      wall[stage] += (now - lap) / 1000;
      lap = now;
      progress.update(steps[stage], fmt(shown(losses)));
      if (steps[stage] % 10 === 0)
        await appendFile(join(o.out, 'log.jsonl'), JSON.stringify({ stage, step: steps[stage], ...losses }) + '\n');
      await after?.(steps[stage]);
      if (steps[stage] % o.checkpointEvery === 0) await save();
    }
  };

  try {
    await runStage(
      'text',
      'text (DS-SJE)',
      (done) => step('text', optimizers.text, set.textBatch(textSize, model.config, rng), done),
      (l) => l,
    );

    const needsEmbeddings =
      (o.stages.includes('gan') && steps.gan < o.steps.gan) ||
      (o.stages.includes('style') && steps.style < o.steps.style);
    const synth = Synthesizer.fromModel(model, {
      format: 'ganvas-checkpoint',
      version: 1,
      model: model.config,
      steps,
      createdAt: '',
    });
    const textWeights = [...model.text.params.all().values()].map(
      (v) => new Uint8Array((v.dataSync() as Float32Array).buffer),
    );
    const cache = o.embeddingsCache ?? join(o.out, 'embeddings');
    const embedded = (byImage: string[][], name: string) =>
      CaptionEmbeddings.cached(byImage, (c) => synth.embed(c), name, textWeights);
    const emb = needsEmbeddings && !stop ? await embedded(captions, cache) : null;
    // the same edits on every resume: their own stream, from the seed
    const edits = new Rng(o.seed + 2);
    const recoloured: CaptionEmbeddings[] = [];
    if (emb && o.hardNegatives > 0 && o.stages.includes('gan') && steps.gan < o.steps.gan)
      for (const edit of RECOLOURINGS)
        recoloured.push(
          await embedded(
            captions.map((c) => recolour(c, edit, edits)),
            `${cache}-${edit}`,
          ),
        );
    const writeSamples = sampleSheets(o, set, synth);

    if (emb) {
      if (model.config.conditioning !== 'paper' && steps.gan === 0) {
        centreConditioning(model, emb);
        shards.touch('generator');
      }
      const batchOptions = {
        size: o.batch,
        zDim: model.config.zDim,
        interpolate: usesInterpolation(o.variant),
        pairNoise: o.diversity > 0,
        epsDim: model.config.conditioning === 'augmented' ? model.config.projDim : 0,
        translate,
        crop: o.realCrop,
        hardNegatives: o.hardNegatives,
        recoloured,
        colourBalance: o.colourBalance,
        colourGroups: groups,
      };

      if (o.textMatch > 0 && steps.gan < o.steps.gan && (!model.image || steps.text === 0))
        throw new Error("--text-match scores G's images with the text stage's image encoder: run the text stage first");
      await runStage(
        'gan',
        `gan (${o.variant})`,
        async (done) => {
          const batch = ganBatch(set, emb, batchOptions, rng);
          const d = await step('d', optimizers.d, batch, done);
          const g = await step('g', optimizers.g, batch, done);
          if (model.ema) {
            updateEma(model, o.ema, done);
            shards.touch('ema');
          }
          return { ...d, ...g };
        },
        (l) => ({
          d: l.d,
          g: l.g,
          ...(o.diversity > 0 ? { ms: l.ms } : {}),
          ...(o.textMatch > 0 ? { match: l.match } : {}),
        }),
        async (done) => {
          if (done % o.sampleEvery === 0) await writeSamples(`gan_${String(done).padStart(6, '0')}`);
        },
      );
      // before S learns to invert the served G (a resumed run recomputes the same statistics)
      if (o.standingStats > 0 && steps.gan > 0 && steps.style === 0 && !stop) {
        o.log(
          `standing statistics: setting G's batch norms from ${o.standingStats} batches of ${o.batch} at noise scale ${model.config.noiseScale}, conditioning noise ${model.config.conditioningNoise}, conditioning gain ${model.config.conditioningGain.toFixed(3)}`,
        );
        const statsRng = new Rng(o.seed + 1);
        standingStats(servedGenerator(model), o.standingStats, () => {
          const b = styleBatch(set, emb, o.batch, model.config, statsRng, true);
          const h = b.h!;
          h.data = servedConditioning(h.data as Float32Array, synth.conditioningCentre, model.config.conditioningGain);
          return toTensors(b) as unknown as StyleBatch;
        });
        shards.touch(model.ema ? 'ema' : 'generator');
      }
      await runStage(
        'style',
        'style encoder',
        (done) => step('style', optimizers.style, styleBatch(set, emb, o.batch, model.config, rng), done),
        (l) => l,
      );
    }
    await save();
    if (steps.gan > 0) await writeSamples(`final_gan_${String(steps.gan).padStart(6, '0')}`);
    o.log(
      `checkpoint: ${checkpointDir} (text ${steps.text}, gan ${steps.gan}, style ${steps.style} steps)${stop ? ' - stopped early' : ''}`,
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await shards.close();
  }
  return {
    format: 'ganvas-checkpoint',
    version: 1,
    model: model.config,
    steps,
    wallSeconds: wall,
    createdAt: new Date().toISOString(),
  };
}
