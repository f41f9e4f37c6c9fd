/**
 * `npm run eval -- <checkpoint> --data DIR [--out DIR] [--per-class N] [--classifier-steps N] [--classifier-dir DIR]
 * [--noise-scale S] [--conditioning-noise K] [--conditioning-gain G]`
 */
import { join } from 'node:path';
import { Args, runMain } from '../src/cli/args.ts';
import { initBackend } from '../src/model/backend.ts';
import { parseBackendChoice } from '../src/model/backends.ts';
import { PER_CLASS, PINNED_CLASSIFIERS, evaluate } from '../src/eval/evaluate.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const checkpoint = a.positional[0] ?? a.required('checkpoint');
  const backend = parseBackendChoice(a.string('backend') ?? process.env.GANVAS_BACKEND);
  const out = a.string('out', join(checkpoint, 'eval'));
  const options = {
    checkpoint,
    data: a.required('data'),
    out,
    perClass: a.int('per-class', PER_CLASS),
    classifierSteps: a.int('classifier-steps', 600),
    classifierDir: a.string('classifier-dir', PINNED_CLASSIFIERS),
    noiseScale: a.number('noise-scale'),
    conditioningNoise: a.number('conditioning-noise'),
    conditioningGain: a.number('conditioning-gain'),
    log: console.log,
  };
  a.end();
  await initBackend(backend, console.log);
  await evaluate(options);
  console.log(`report: ${join(out, 'report.md')}`);
});
