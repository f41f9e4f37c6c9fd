/** `npm run eval -- <checkpoint> --data DIR [--out DIR] [--per-class N] [--classifier-steps N]` */
import { join } from 'node:path';
import { Args, runMain } from '../cli/args.ts';
import { initBackend, parseBackendChoice } from '../model/backend.ts';
import { evaluate } from './evaluate.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const checkpoint = a.positional[0] ?? a.required('checkpoint');
  await initBackend(parseBackendChoice(a.string('backend') ?? process.env.GANVAS_BACKEND), console.log);
  const out = a.string('out', join(checkpoint, 'eval'));
  await evaluate({ checkpoint, data: a.required('data'), out, perClass: a.int('per-class', 16), fidImages: a.int('fid-images', 512), classifierSteps: a.int('classifier-steps', 600), log: console.log });
  console.log(`report: ${join(out, 'report.md')}`);
});
