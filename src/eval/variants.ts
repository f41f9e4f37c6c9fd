/**
 * `npm run eval:variants -- --data DIR --out DIR [--size 32 --gan-steps N --diversity W ...]`: the paper's
 * comparison of GAN, GAN-CLS, GAN-INT and GAN-INT-CLS with the same budget, plus GAN-INT-CLS with ganvas's
 * mode-seeking term (weight W, 1 unless 0): one shared text encoder, then each one's GAN and style encoder
 * with the same seed and steps, each evaluated, and one table (variants.md).
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Args, runMain } from '../cli/args.ts';
import { initBackend, parseBackendChoice } from '../model/backend.ts';
import { type ImageSize, defaultModelConfig } from '../model/config.ts';
import { VARIANTS } from '../model/losses.ts';
import { type TrainOptions, train } from '../train/trainer.ts';
import { type EvalReport, evaluate } from './evaluate.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  await initBackend(parseBackendChoice(a.string('backend') ?? process.env.GANVAS_BACKEND), console.log);
  const out = a.required('out');
  const data = a.required('data');
  const base: TrainOptions = {
    data, out: join(out, 'text'), stages: ['text'], variant: 'gan-int-cls',
    steps: { text: a.int('text-steps', 200), gan: a.int('gan-steps', 600), style: a.int('style-steps', 200) },
    batch: a.int('batch', 32), lr: 2e-4, lrDecayEvery: 0, diversity: 0, sampleEvery: a.int('gan-steps', 600), checkpointEvery: 100_000, seed: a.int('seed', 1),
    model: defaultModelConfig({ imageSize: a.int('size', 32) as ImageSize, ngf: a.int('ngf', 32), ndf: a.int('ndf', 32), nef: 16 }),
    log: console.log,
  };
  await mkdir(out, { recursive: true });
  await train(base);
  const reports: [string, EvalReport][] = [];
  const diversity = a.number('diversity', 1);
  const runs = [...VARIANTS.map((variant) => ({ name: variant, variant, diversity: 0 })), ...(diversity > 0 ? [{ name: 'gan-int-cls-ms', variant: 'gan-int-cls' as const, diversity }] : [])];
  for (const { name, variant, diversity: weight } of runs) {
    const dir = join(out, name);
    await cp(join(out, 'text', 'checkpoint'), join(dir, 'checkpoint'), { recursive: true });
    console.log(`\n${name}`);
    await train({ ...base, out: dir, stages: ['gan', 'style'], variant, diversity: weight });
    reports.push([name, await evaluate({ checkpoint: join(dir, 'checkpoint'), data, out: join(dir, 'eval'), perClass: 16, fidImages: 512, classifierSteps: a.int('classifier-steps', 600), log: console.log })]);
  }
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
  const lines = [
    `# GAN variants with the same budget`,
    ``,
    `${base.model.imageSize}x${base.model.imageSize}, ngf=ndf=${base.model.ngf}, batch ${base.batch}; shared text encoder (${base.steps.text} steps), then ${base.steps.gan} GAN and ${base.steps.style} style-encoder steps each, seed ${base.seed}.`,
    ``,
    `| variant | fidelity, training classes | fidelity, unseen | petal colour (train / unseen) | Fréchet distance | style AUC background / pose | caption baseline |`,
    `| --- | --- | --- | --- | --- | --- | --- |`,
    ...reports.map(([v, r]) => `| ${v} | ${pct(r.fidelity.generatedTrain.all)} | ${pct(r.fidelity.generatedUnseen.all)} | ${pct(r.fidelity.generatedTrain.petalColour)} / ${pct(r.fidelity.generatedUnseen.petalColour)} | ${r.frechet.generatedVsReal.toFixed(1)} | ${r.style.backgroundAuc.toFixed(3)} / ${r.style.poseAuc.toFixed(3)} | ${r.style.captionBackgroundAuc.toFixed(3)} / ${r.style.captionPoseAuc.toFixed(3)} |`),
    ``,
    ...(diversity > 0 ? [``, `gan-int-cls-ms: GAN-INT-CLS plus the mode-seeking term with weight ${diversity} (\`--diversity\`, docs/training.md).`] : []),
    `Real-image ceiling (same classifier, same captions): ${pct(reports[0][1].fidelity.realTrain.all)} training classes, ${pct(reports[0][1].fidelity.realUnseen.all)} unseen; real-vs-real Fréchet floor ${reports[0][1].frechet.realVsReal.toFixed(1)}.`,
    `Each variant's report and sheets: <variant>/eval/report.md.`,
  ];
  await writeFile(join(out, 'variants.md'), lines.join('\n') + '\n');
  console.log(lines.join('\n'));
});
