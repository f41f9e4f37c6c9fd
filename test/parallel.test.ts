/**
 * Data-parallel training (src/train/shards.ts): a run's result depends on its shard count, never on how
 * many threads compute the shards, and one shard is the single-threaded step.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateFlowers } from '../src/data/generate.ts';
import { initBackend } from '../src/model/backend.ts';
import { loadCheckpoint } from '../src/model/checkpoint.ts';
import type { ModelConfig } from '../src/model/config.ts';
import { disposeModel, networkParams } from '../src/model/model.ts';
import { type TrainOptions, checkResumable, train } from '../src/train/trainer.ts';
import { tinyConfig, tinyRun } from './support/model.ts';

let root = '';
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'ganvas-parallel-'));
  await generateFlowers({ out: join(root, 'data'), images: 24, size: 38, seed: 3, species: 6, testSpecies: 2 });
});

const options = (
  out: string,
  threads: number,
  shards: number,
  model: ModelConfig = tinyConfig(32),
  extra: Partial<TrainOptions> = {},
): TrainOptions =>
  tinyRun(join(root, 'data'), join(root, out), {
    steps: { text: 3, gan: 3, style: 2 },
    batch: 8,
    diversity: 0.5,
    seed: 4,
    model,
    threads,
    shards,
    ...extra,
  });

async function weights(run: string): Promise<Map<string, Float32Array>> {
  const { model } = await loadCheckpoint(join(root, run, 'checkpoint'), true, true);
  const out = new Map<string, Float32Array>();
  for (const [net, p] of networkParams(model))
    for (const [n, v] of p.all()) out.set(`${net}/${n}`, v.dataSync() as Float32Array);
  disposeModel(model);
  return out;
}

function maxDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let max = 0;
  for (const [k, v] of a) v.forEach((x, i) => (max = Math.max(max, Math.abs(x - b.get(k)![i]))));
  return max;
}

test('two shards on two threads equal two shards on one thread, to float tolerance', async () => {
  await train(options('t1s2', 1, 2));
  await train(options('t2s2', 2, 2));
  const diff = maxDifference(await weights('t1s2'), await weights('t2s2'));
  assert.ok(diff <= 1e-6, `weights differ by ${diff}`);
});

test('the new recipe (resize-convolution, augmented conditioning, hinge, EMA, D translation) is sharded the same way', async () => {
  const model = { ...tinyConfig(32), upsampling: 'resize' as const, conditioning: 'augmented' as const };
  const extra = { objective: 'hinge' as const, ema: 0.99, dTranslate: 0.125 };
  await train(options('new-t1s2', 1, 2, model, extra));
  await train(options('new-t2s2', 2, 2, model, extra));
  const a = await weights('new-t1s2');
  assert.ok(maxDifference(a, await weights('new-t2s2')) <= 1e-6);
  assert.ok([...a.keys()].some((k) => k.startsWith('ema/')));
});

test("G's caption-matching term is sharded the same way, in a run resumed after its text stage too", async () => {
  const extra = { textMatch: 1 };
  await train(options('match-t1s2', 1, 2, undefined, extra));
  // the threads of the resumed run never ran the text stage: they must be sent the image encoder the term reads
  await train(options('match-t2s2', 2, 2, undefined, { ...extra, stages: ['text'] }));
  await train(options('match-t2s2', 2, 2, undefined, extra));
  assert.ok(maxDifference(await weights('match-t1s2'), await weights('match-t2s2')) <= 1e-6);
  // and it changes the run
  assert.ok(maxDifference(await weights('match-t1s2'), await weights('t1s2')) > 1e-6);
});

test("the text stage's attribute term is sharded the same way, and changes the run", async () => {
  // more species than the shared set: two shards of 4 rows, where captions name one value of an attribute twice
  const data = join(root, 'data-12');
  await generateFlowers({ out: data, images: 24, size: 38, seed: 3, species: 12, testSpecies: 2 });
  const extra = { data, textAttributes: 1, stages: ['text' as const] };
  await train(options('attr-t1s2', 1, 2, undefined, extra));
  await train(options('attr-t2s2', 2, 2, undefined, extra));
  const a = await weights('attr-t1s2');
  assert.ok(maxDifference(a, await weights('attr-t2s2')) <= 1e-6);
  await train(options('plain-text', 1, 2, undefined, { ...extra, textAttributes: 0 }));
  assert.ok(maxDifference(a, await weights('plain-text')) > 1e-6);
});

test('sharding changes the result (batch norm sees each shard), so the shard count is part of a run', async () => {
  await train(options('t1s1', 1, 1));
  assert.ok(maxDifference(await weights('t1s1'), await weights('t1s2')) > 0);
});

test('a batch that does not split into equal shards, a translation of no pixel, or hard negatives for a D without wrong texts are refused with a clear message', async () => {
  await assert.rejects(train(options('bad', 2, 3)), /cannot be cut into 3 equal shards/);
  await assert.rejects(train(options('still', 1, 1, undefined, { dTranslate: 0.01 })), /moves no pixel at 32x32/);
  await assert.rejects(
    train(options('plain', 1, 1, undefined, { variant: 'gan-int', hardNegatives: 0.5 })),
    /--hard-negatives: gan-int shows D no wrong text/,
  );
});

test("a run recorded before an option existed had the paper's value: resumed with another, it is refused", () => {
  const o = options('old', 1, 1, undefined, { hardNegatives: 0.5 });
  const meta = {
    format: 'ganvas-checkpoint' as const,
    version: 1 as const,
    model: o.model,
    steps: { text: 3, gan: 1, style: 0 },
    createdAt: '',
    training: { ...o, hardNegatives: undefined, log: undefined, model: undefined },
  };
  assert.throws(() => checkResumable(o, meta, 'old'), /--hard-negatives 0 \(this command: 0.5\)/);
  checkResumable({ ...o, hardNegatives: 0 }, meta, 'old');
  // without a record (eval:variants' starting point) only the architecture is compared
  checkResumable(o, { ...meta, training: undefined }, 'old');
});
