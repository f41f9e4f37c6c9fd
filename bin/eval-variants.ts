/**
 * `npm run eval:variants -- --data DIR --out DIR [--size 32 --gan-steps N --runs a,b,...]`: candidate
 * recipes compared at the same budget, each beside the paper's GAN-INT-CLS and the previous default
 * recipe (GAN-INT-CLS + mode seeking): one shared text encoder, then each recipe's GAN and style encoder
 * from the same seed, data order and steps, each evaluated with the same classifier, and one table
 * (variants.md). The paper's other variants (gan, gan-cls, gan-int) can be named in --runs too.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Args, runMain } from '../src/cli/args.ts';
import { defaultThreads, initBackend } from '../src/model/backend.ts';
import { parseBackendChoice } from '../src/model/backends.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.ts';
import { type ImageSize, type ModelConfig, defaultModelConfig } from '../src/model/config.ts';
import { type AdversarialLoss, type Variant } from '../src/model/losses.ts';
import { buildModel, disposeModel } from '../src/model/model.ts';
import { PAPER_TRAINING, type TrainOptions, train } from '../src/train/trainer.ts';
import type { RealCrop } from '../src/train/data.ts';
import { type EvalReport, PER_CLASS, PINNED_CLASSIFIERS, evaluate } from '../src/eval/evaluate.ts';
import { AttributeClassifier } from '../src/eval/classifier.ts';

interface Recipe {
  name: string;
  what: string;
  variant: Variant;
  diversity: number;
  objective: AdversarialLoss;
  ema: number;
  /** Batches that set the served G's batch-norm statistics after the GAN stage (0: training's). */
  standingStats: number;
  /** DiffAugment translation for D, as a fraction of the image size (0: off). */
  dTranslate: number;
  /** Where the real images are cropped: anywhere (the paper's) or at the centre, as the evaluation's real set. */
  realCrop: RealCrop;
  /** The share of D's wrong texts that are the image's own captions recoloured (0: another class's, the paper's). */
  hardNegatives: number;
  /** The share of images picked balanced by their captions' petal colour (0: uniformly, the paper's). */
  colourBalance: number;
  /** Weight of G's caption-matching term, scored by the frozen DS-SJE image encoder (0: off, the paper's). */
  textMatch: number;
  /** Times the learning rate halves, evenly spaced over the GAN stage (0: constant; the paper's code halves it). */
  lrHalvings: number;
  model: Pick<ModelConfig, 'upsampling' | 'conditioning' | 'discriminator' | 'generator'>;
}

const PAPER: Recipe = {
  name: 'gan-int-cls',
  what: "the paper's GAN-INT-CLS",
  variant: 'gan-int-cls',
  diversity: 0,
  objective: 'bce',
  ema: 0,
  standingStats: 0,
  dTranslate: 0,
  realCrop: 'random',
  hardNegatives: 0,
  colourBalance: 0,
  textMatch: 0,
  lrHalvings: 0,
  model: { upsampling: 'transposed', conditioning: 'paper', discriminator: 'paper', generator: 'paper' },
};
const MS: Recipe = {
  ...PAPER,
  name: 'gan-int-cls-ms',
  what: 'the previous default: GAN-INT-CLS + mode seeking (weight 1)',
  diversity: 1,
};

const V2: Recipe = {
  ...MS,
  name: 'v2',
  what: 'mode seeking + EMA + resize-convolution + augmented conditioning',
  ema: 0.999,
  model: { upsampling: 'resize', conditioning: 'augmented', discriminator: 'paper', generator: 'paper' },
};

/** Each candidate changes one thing of the previous default; `v2` is all that the table supports. */
export const RECIPES: Recipe[] = [
  ...(['gan', 'gan-cls', 'gan-int'] as const).map((variant) => ({
    ...PAPER,
    name: variant,
    what: `the paper's ${variant.toUpperCase()}`,
    variant,
  })),
  PAPER,
  MS,
  { ...MS, name: 'ms+ema', what: 'served G is an exponential moving average of G (decay 0.999)', ema: 0.999 },
  {
    ...MS,
    name: 'ms+resize',
    what: 'nearest 2x + 3x3 convolution instead of transposed convolutions',
    model: { ...MS.model, upsampling: 'resize' },
  },
  { ...MS, name: 'ms+hinge', what: 'hinge loss instead of cross-entropy (the stabiliser)', objective: 'hinge' },
  {
    ...MS,
    name: 'ms+centred',
    what: 'phi(t) centred and scaled before G reads it',
    model: { ...MS.model, conditioning: 'centred' },
  },
  {
    ...MS,
    name: 'ms+augmented',
    what: 'centred + conditioning augmentation (StackGAN, KL weight 2)',
    model: { ...MS.model, conditioning: 'augmented' },
  },
  V2,
  { ...V2, name: 'v2+hinge', what: 'v2 with the hinge loss', objective: 'hinge' },
  {
    ...V2,
    name: 'v2+stats',
    what: "v2 with standing statistics: served G's batch norms set from 200 batches drawn as at inference",
    standingStats: 200,
  },
  {
    ...V2,
    name: 'v2+stats+decay',
    what: "v2+stats with the learning rate halved after each third of the GAN stage (the paper code's schedule)",
    standingStats: 200,
    lrHalvings: 2,
  },
  {
    ...V2,
    name: 'v2+stats+translate',
    what: 'v2+stats with DiffAugment translation: D sees every image, real and generated, moved by up to 1/8 of its size',
    standingStats: 200,
    dTranslate: 0.125,
  },
  {
    ...V2,
    name: 'v2+stats+centre-translate',
    what: 'v2+stats with real images cropped at the centre (flipped only) and D seeing every image moved by up to 1/8',
    standingStats: 200,
    dTranslate: 0.125,
    realCrop: 'centre',
  },
  {
    ...V2,
    name: 'v2+stats+recolour',
    what: "v2+stats with hard negatives: half of D's wrong texts are the image's own captions with two colours swapped or one replaced",
    standingStats: 200,
    hardNegatives: 0.5,
  },
  {
    ...V2,
    name: 'v2+stats+balance',
    what: "v2+stats with half of each batch's images picked balanced by their captions' petal colour (a colour at random, then an image)",
    standingStats: 200,
    colourBalance: 0.5,
  },
  {
    ...V2,
    name: 'v2+stats+projection',
    what: "v2+stats with the projection discriminator's term: D's logit adds <its image features, pooled, W phi(t)>",
    standingStats: 200,
    model: { ...V2.model, discriminator: 'projection' },
  },
  {
    ...V2,
    name: 'v2+stats+affine',
    what: "v2+stats with G reading the caption at every resolution: each batch norm's output scaled and shifted per channel by a linear map of the conditioning code",
    standingStats: 200,
    model: { ...V2.model, generator: 'affine' },
  },
  {
    ...V2,
    name: 'v2+stats+match',
    what: "v2+stats with G's caption-matching term (weight 1): each image G draws for a caption should score it above the batch's other captions, read by the text stage's image encoder",
    standingStats: 200,
    textMatch: 1,
  },
];
const DEFAULT_RUNS =
  'gan-int-cls,gan-int-cls-ms,ms+ema,ms+resize,ms+hinge,ms+centred,ms+augmented,v2,v2+hinge,v2+stats';

/** A run folder that starts where the shared text stage ended, with this recipe's freshly initialised G, D and S. */
async function startFrom(
  textCheckpoint: string,
  dir: string,
  model: ModelConfig,
  seed: number,
  ema: number,
): Promise<void> {
  const text = await loadCheckpoint(textCheckpoint, true);
  const fresh = buildModel(model, seed, true, ema > 0);
  fresh.text.params.dispose();
  fresh.image!.params.dispose();
  const run = { ...fresh, text: text.model.text, image: text.model.image };
  await saveCheckpoint(dir, run, { steps: text.meta.steps, wallSeconds: text.meta.wallSeconds, rng: text.meta.rng });
  disposeModel(run);
  disposeModel({ ...text.model, text: fresh.text, image: fresh.image });
}

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const backend = await initBackend(parseBackendChoice(a.string('backend') ?? process.env.GANVAS_BACKEND), console.log);
  const out = a.required('out');
  const data = a.required('data');
  const threads = a.int('threads', defaultThreads(backend));
  const base: TrainOptions = {
    data,
    out: join(out, 'text'),
    ...PAPER_TRAINING,
    stages: ['text'],
    steps: { text: a.int('text-steps', 200), gan: a.int('gan-steps', 600), style: a.int('style-steps', 200) },
    batch: a.int('batch', 32),
    sampleEvery: a.int('gan-steps', 600),
    checkpointEvery: 100_000,
    seed: a.int('seed', 1),
    model: defaultModelConfig({
      imageSize: a.int('size', 32) as ImageSize,
      ngf: a.int('ngf', 32),
      ndf: a.int('ndf', 32),
      nef: 16,
    }),
    threads,
    shards: a.int('shards', 2),
    backend,
    log: console.log,
  };
  const names = a.string('runs', DEFAULT_RUNS).split(',');
  const classifierSteps = a.int('classifier-steps', 600);
  const classifierDir = a.string('classifier-dir', PINNED_CLASSIFIERS);
  a.end();
  const recipes = names.map(
    (n) =>
      RECIPES.find((r) => r.name === n) ??
      (() => {
        throw new Error(`unknown recipe ${n}: one of ${RECIPES.map((r) => r.name).join(', ')}`);
      })(),
  );
  await mkdir(out, { recursive: true });
  // Ctrl-C makes the running train() checkpoint and return; then stop here too, not at the next recipe
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (interrupted = true));
  await train(base);
  // pinned or trained once, shared by every evaluation
  const classifier = new Map<number, { classifier: AttributeClassifier; source: string }>();
  const reports: [Recipe, EvalReport][] = [];
  for (const recipe of recipes) {
    const dir = join(out, recipe.name);
    const model = { ...base.model, ...recipe.model };
    // a recipe begun by an earlier run of this command goes on from its checkpoint (train resumes it)
    if (!existsSync(join(dir, 'checkpoint', 'checkpoint.json')))
      await startFrom(join(out, 'text', 'checkpoint'), join(dir, 'checkpoint'), model, base.seed, recipe.ema);
    console.log(`\n${recipe.name}: ${recipe.what}`);
    if (interrupted) break;
    await train({
      ...base,
      out: dir,
      stages: ['gan', 'style'],
      variant: recipe.variant,
      diversity: recipe.diversity,
      objective: recipe.objective,
      ema: recipe.ema,
      standingStats: recipe.standingStats,
      dTranslate: recipe.dTranslate,
      realCrop: recipe.realCrop,
      hardNegatives: recipe.hardNegatives,
      textMatch: recipe.textMatch,
      colourBalance: recipe.colourBalance,
      lrDecayEvery: recipe.lrHalvings > 0 ? Math.ceil(base.steps.gan / (recipe.lrHalvings + 1)) : 0,
      model,
      embeddingsCache: join(out, 'text', 'embeddings'),
    });
    if (interrupted) break;
    reports.push([
      recipe,
      await evaluate({
        checkpoint: join(dir, 'checkpoint'),
        data,
        out: join(dir, 'eval'),
        perClass: PER_CLASS,
        classifierSteps,
        classifiers: classifier,
        classifierDir,
        log: console.log,
      }),
    ]);
    await writeFile(join(out, 'variants.md'), table(base, reports));
  }
  if (reports.length > 0) console.log(table(base, reports));
});

const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);

function table(base: TrainOptions, reports: [Recipe, EvalReport][]): string {
  const real = reports[0][1];
  return [
    `# Recipes at the same budget`,
    ``,
    `${base.model.imageSize}x${base.model.imageSize}, ngf=ndf=${base.model.ngf}, batch ${base.batch} in ${base.shards} shards; shared text encoder (${base.steps.text} steps), then ${base.steps.gan} GAN and ${base.steps.style} style-encoder steps each, seed ${base.seed}.`,
    ``,
    `| recipe | fidelity, training / unseen | petal colour, training / unseen / held-out phrasings | Fréchet | artefact energy vs real | interpolation middle foreground | seed / caption spread | style AUC background / pose |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...reports.map(
      ([v, r]) =>
        `| ${v.name} | ${pct(r.fidelity.generatedTrain.all)} / ${pct(r.fidelity.generatedUnseen.all)} | ${pct(r.fidelity.generatedTrain.petalColour)} / ${pct(r.fidelity.generatedUnseen.petalColour)} / ${pct(r.phrasing.heldOut.petalColour)} | ${r.frechet.generatedVsReal.toFixed(1)} | ${r.artefacts.ratio.toFixed(2)} | ${r.interpolation.middleForeground?.toFixed(2) ?? 'n/a'} | ${r.spread.acrossSeeds.toFixed(3)} / ${r.spread.acrossCaptions.toFixed(3)} | ${r.style.backgroundAuc.toFixed(3)} / ${r.style.poseAuc.toFixed(3)} |`,
    ),
    ``,
    ...reports.map(([v]) => `- **${v.name}**: ${v.what}.`),
    ``,
    `Real images: fidelity ceiling ${pct(real.fidelity.realTrain.all)} training, ${pct(real.fidelity.realUnseen.all)} unseen; Fréchet floor ${real.frechet.realVsReal.toFixed(1)}; spread of real images within a class / across classes (beside seed / caption spread): ${real.spread.realWithinClass.toFixed(3)} / ${real.spread.realAcrossCaptions.toFixed(3)}. Classifier: ${real.classifier}.`,
    `Each recipe's report and sheets: <recipe>/eval/report.md.`,
    ``,
  ].join('\n');
}
