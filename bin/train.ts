/**
 * `npm run train -- --data DIR --out RUN [options]`: trains phi, then the GAN, then S (or the stages
 * given with --stage), resuming from RUN/checkpoint when it exists. See docs/training.md.
 */
import { join } from 'node:path';
import { Args, runMain } from '../src/cli/args.ts';
import { readCheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { defaultThreads, initBackend } from '../src/model/backend.ts';
import { parseBackendChoice } from '../src/model/backends.ts';
import {
  type Conditioning,
  type DiscriminatorKind,
  type GeneratorKind,
  type ImageSize,
  type Upsampling,
  defaultModelConfig,
  validateModelConfig,
} from '../src/model/config.ts';
import { ADVERSARIAL_LOSSES, type AdversarialLoss, VARIANTS, type Variant } from '../src/model/losses.ts';
import { PAPER_TRAINING, STAGES, type Stage, train } from '../src/train/trainer.ts';
import { REAL_CROPS, type RealCrop } from '../src/train/data.ts';

/** The shards the run in `out` was trained with, if it has a checkpoint that says. */
async function recordedShards(out: string): Promise<number | undefined> {
  const meta = await readCheckpointMeta(join(out, 'checkpoint')).catch(() => null);
  const shards = meta?.training?.shards;
  return typeof shards === 'number' ? shards : undefined;
}

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const backend = await initBackend(parseBackendChoice(a.string('backend') ?? process.env.GANVAS_BACKEND), console.log);
  const variant = a.string('variant', PAPER_TRAINING.variant) as Variant;
  if (!VARIANTS.includes(variant)) throw new Error(`--variant must be one of ${VARIANTS.join(', ')}`);
  const stage = a.string('stage', 'all');
  const stages: Stage[] = stage === 'all' ? [...STAGES] : stage.split(',').map((s) => s.trim() as Stage);
  for (const s of stages)
    if (!STAGES.includes(s)) throw new Error(`--stage must be all or a list of ${STAGES.join(', ')}`);
  const diversity = a.number('diversity', PAPER_TRAINING.diversity);
  if (diversity < 0) throw new Error('--diversity must be 0 (off) or a positive weight');
  const objective = a.string('loss', PAPER_TRAINING.objective) as AdversarialLoss;
  if (!ADVERSARIAL_LOSSES.includes(objective))
    throw new Error(`--loss must be one of ${ADVERSARIAL_LOSSES.join(', ')}`);
  const ema = a.number('ema', PAPER_TRAINING.ema);
  if (!(ema >= 0 && ema < 1)) throw new Error('--ema must be 0 (off) or a decay in (0, 1), e.g. 0.999');
  const standingStats = a.int('standing-stats', PAPER_TRAINING.standingStats);
  if (standingStats < 0) throw new Error('--standing-stats must be 0 (off) or a number of batches, e.g. 200');
  const dTranslate = a.number('d-translate', PAPER_TRAINING.dTranslate);
  if (!(dTranslate >= 0 && dTranslate < 0.5))
    throw new Error('--d-translate must be 0 (off) or a fraction below 0.5, e.g. 0.125');
  const realCrop = a.string('real-crop', PAPER_TRAINING.realCrop) as RealCrop;
  if (!REAL_CROPS.includes(realCrop)) throw new Error(`--real-crop must be one of ${REAL_CROPS.join(', ')}`);
  const hardNegatives = a.number('hard-negatives', PAPER_TRAINING.hardNegatives);
  if (!(hardNegatives >= 0 && hardNegatives <= 1))
    throw new Error('--hard-negatives must be a share from 0 (off) to 1, e.g. 0.5');
  const colourBalance = a.number('colour-balance', PAPER_TRAINING.colourBalance);
  if (!(colourBalance >= 0 && colourBalance <= 1))
    throw new Error('--colour-balance must be a share from 0 (off) to 1, e.g. 0.5');
  const textMatch = a.number('text-match', PAPER_TRAINING.textMatch);
  if (!(textMatch >= 0)) throw new Error('--text-match must be 0 (off) or a positive weight, e.g. 1');
  const textAttributes = a.number('text-attributes', PAPER_TRAINING.textAttributes);
  if (!(textAttributes >= 0)) throw new Error('--text-attributes must be 0 (off) or a positive weight, e.g. 1');
  const noiseScale = a.number('noise-scale');
  if (noiseScale !== undefined && !(noiseScale > 0 && noiseScale <= 4))
    throw new Error('--noise-scale must be above 0 and at most 4, e.g. 1.8');
  const conditioningNoise = a.number('conditioning-noise');
  if (conditioningNoise !== undefined && !(conditioningNoise >= 0 && conditioningNoise <= 4))
    throw new Error('--conditioning-noise must be 0 (off) or at most 4, e.g. 1');
  const threads = a.int('threads', defaultThreads(backend));
  const model = validateModelConfig(
    defaultModelConfig({
      imageSize: a.int('size', 64) as ImageSize,
      ngf: a.int('ngf', 64),
      ndf: a.int('ndf', 64),
      nef: a.int('nef', 32),
      zDim: a.int('z-dim', 100),
      embedDim: a.int('embed-dim', 1024),
      upsampling: a.string('upsampling', 'transposed') as Upsampling,
      conditioning: a.string('conditioning', 'paper') as Conditioning,
      discriminator: a.string('discriminator', 'paper') as DiscriminatorKind,
      generator: a.string('generator', 'paper') as GeneratorKind,
    }),
  );
  const out = a.required('out');
  const options = {
    data: a.required('data'),
    out,
    stages,
    variant,
    steps: { text: a.int('text-steps', 1000), gan: a.int('gan-steps', 5000), style: a.int('style-steps', 1000) },
    batch: a.int('batch', 64),
    lr: a.number('lr', PAPER_TRAINING.lr),
    lrDecayEvery: a.int('lr-decay-every', PAPER_TRAINING.lrDecayEvery),
    diversity,
    objective,
    ema,
    standingStats,
    noiseScale,
    conditioningNoise,
    dTranslate,
    realCrop,
    hardNegatives,
    colourBalance,
    textMatch,
    textAttributes,
    sampleEvery: a.int('sample-every', 250),
    checkpointEvery: a.int('checkpoint-every', 250),
    seed: a.int('seed', 1),
    model,
    threads,
    // a resumed run keeps its shards (the result depends on them) unless told; a new one has one a thread
    shards: a.int('shards', (await recordedShards(out)) ?? threads),
    backend,
    log: console.log,
  };
  a.end();
  await train(options);
});
