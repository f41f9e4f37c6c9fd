/**
 * `npm run model:init -- --out DIR --size 32|64|128 [--ngf N --ndf N]`: a random-weight checkpoint of the real
 * architecture (the service labels it untrained).
 * `npm run model:export -- --from RUN/checkpoint --out DIR [--float32] [--noise-scale S] [--conditioning-gain G]`: an
 * inference checkpoint (phi, G, S; float16 weights; no optimizer state) for shipping, e.g. models/default; other
 * files in DIR stay. `--noise-scale S` relabels the scale it serves (its standing statistics and S stay as trained: a
 * model is made for a scale by training with it, docs/training.md); `--conditioning-gain G` where it places a
 * caption's phi(t) about the captions' mean (training sets it: ModelConfig.conditioningGain).
 */
import { Args, runMain } from '../src/cli/args.ts';
import { initBackend } from '../src/model/backend.ts';
import { exportCheckpoint, saveCheckpoint } from '../src/model/checkpoint.ts';
import { readCheckpointMeta } from '../src/model/checkpoint-meta.ts';
import { type ImageSize, defaultModelConfig, validateModelConfig } from '../src/model/config.ts';
import { buildModel } from '../src/model/model.ts';

runMain(async () => {
  const [command, ...rest] = process.argv.slice(2);
  const a = new Args(rest);
  await initBackend('cpu');
  if (command === 'init') {
    const size = a.int('size', 64);
    const config = validateModelConfig(
      defaultModelConfig({
        imageSize: size as ImageSize,
        ngf: a.int('ngf', size === 32 ? 32 : 64),
        ndf: a.int('ndf', size === 32 ? 32 : 64),
      }),
    );
    const [seed, out] = [a.int('seed', 1), a.required('out')];
    a.end();
    await saveCheckpoint(
      out,
      buildModel(config, seed, false),
      { steps: { text: 0, gan: 0, style: 0 } },
      { dtype: 'float16' },
    );
    console.log(`wrote an untrained ${size}x${size} checkpoint to ${out}`);
  } else if (command === 'export') {
    const [from, out, dtype] = [
      a.required('from'),
      a.required('out'),
      a.flag('float32') ? 'float32' : 'float16',
    ] as const;
    const noiseScale = a.number('noise-scale');
    const conditioningGain = a.number('conditioning-gain');
    a.end();
    const { steps, training, model } = await readCheckpointMeta(from);
    const trainedAt = Number(training?.noiseScale ?? 1); // runs from before the option made them at 1
    if (noiseScale !== undefined && noiseScale !== trainedAt && steps.gan > 0)
      console.log(
        `note: served at noise scale ${noiseScale}, but its standing statistics and style encoder were made at ${trainedAt} (train with --noise-scale to make them at ${noiseScale}: docs/training.md)`,
      );
    if (conditioningGain !== undefined && conditioningGain !== model.conditioningGain && steps.gan > 0)
      console.log(
        `note: served at conditioning gain ${conditioningGain}, but its standing statistics were made at ${model.conditioningGain} (training sets the gain: docs/training.md)`,
      );
    await exportCheckpoint(from, out, dtype, { noiseScale, conditioningGain });
    console.log(`exported ${from} to ${out}`);
  } else {
    throw new Error('usage: model init --out DIR --size 32|64|128 | model export --from CHECKPOINT --out DIR');
  }
});
