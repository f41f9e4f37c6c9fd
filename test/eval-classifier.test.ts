/**
 * The evaluation's pinned classifier: kept and read back as it measured, and used only for the data set, split and
 * steps it was trained on.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Species } from '../src/data/flowers.ts';
import { generateFlowers } from '../src/data/generate.ts';
import { AttributeClassifier, pinnedOrTrained } from '../src/eval/classifier.ts';
import { initBackend } from '../src/model/backend.ts';
import { TrainingSet } from '../src/train/data.ts';

let dir = '';
let set: TrainingSet;
let speciesText = '';

before(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'ganvas-classifier-'));
  await generateFlowers({ out: join(dir, 'flowers'), images: 40, size: 38, seed: 4 });
  set = await TrainingSet.load(join(dir, 'flowers'), 32, () => {}, 'all');
  speciesText = await readFile(join(dir, 'flowers', 'species.json'), 'utf8');
});

test('a pinned classifier reads back as it measured, and only for what it was trained on', async () => {
  const species = new Map((JSON.parse(speciesText) as Species[]).map((s) => [s.id, s]));
  const indices = set.samples.map((_, i) => i);
  const trained = new AttributeClassifier(32);
  const fingerprintOf = (c: AttributeClassifier, ...a: [string, number[], number]) => c.fingerprint(set, ...a);
  const fingerprint = fingerprintOf(trained, speciesText, indices, 2);
  trained.train(set, indices, species, 2);
  const base = join(dir, 'classifier-32');
  await trained.pin(base, fingerprint);
  const x = set.centred(indices.slice(0, 8));
  const features = (c: AttributeClassifier) => c.predict(x).features.map((f) => [...f]);
  const other = new AttributeClassifier(32, 99);
  assert.notDeepEqual(features(other), features(trained));
  assert.equal(await other.loadPinned(base, fingerprint), 'loaded');
  assert.deepEqual(features(other), features(trained));
  // another pixel, split or number of steps is another fingerprint: the pinned one is not taken
  const changed = [
    fingerprintOf(trained, speciesText, indices.slice(1), 2),
    fingerprintOf(trained, speciesText, indices, 3),
    fingerprintOf(trained, speciesText.replace('"', ' "'), indices, 2),
    fingerprintOf(other, speciesText, indices, 2), // another seed
  ];
  set.images[7][100] ^= 1;
  changed.push(fingerprintOf(trained, speciesText, indices, 2));
  set.images[7][100] ^= 1;
  assert.equal(fingerprintOf(new AttributeClassifier(32), speciesText, indices, 2), fingerprint);
  for (const f of changed) {
    assert.notEqual(f, fingerprint);
    assert.equal(await new AttributeClassifier(32).loadPinned(base, f), 'other');
  }
  assert.equal(await new AttributeClassifier(32).loadPinned(join(dir, 'none'), fingerprint), 'absent');
  // a .bin that is not the one its .json was written with (another run's) is not taken
  await writeFile(`${base}.bin`, Buffer.concat([await readFile(`${base}.bin`), Buffer.from([0])]));
  assert.equal(await new AttributeClassifier(32).loadPinned(base, fingerprint), 'other');
  x.dispose();
});

test('an evaluation pins the classifier where none is, measures with it after, and keeps a pin made for other data', async () => {
  const species = new Map((JSON.parse(speciesText) as Species[]).map((s) => [s.id, s]));
  const indices = set.samples.map((_, i) => i);
  const pins = join(dir, 'pins');
  const lines: string[] = [];
  const first = await pinnedOrTrained(set, species, speciesText, indices, 2, pins, (l) => lines.push(l));
  assert.match(first.source, /^pinned: .*classifier-32 \(fingerprint [0-9a-f]{12}\)$/);
  const pinnedJson = await readFile(join(pins, 'classifier-32.json'), 'utf8');
  const again = await pinnedOrTrained(set, species, speciesText, indices, 2, pins, () => {});
  assert.equal(again.source, first.source);
  const x = set.centred(indices.slice(0, 4));
  assert.deepEqual(
    again.classifier.predict(x).features.map((f) => [...f]),
    first.classifier.predict(x).features.map((f) => [...f]),
  );
  x.dispose();
  const other = await pinnedOrTrained(set, species, speciesText, indices, 3, pins, (l) => lines.push(l));
  assert.equal(other.source, 'trained for this run');
  assert.ok(lines.some((l) => l.includes('trained on other data')));
  assert.equal(await readFile(join(pins, 'classifier-32.json'), 'utf8'), pinnedJson);
  assert.equal(
    (await pinnedOrTrained(set, species, speciesText, indices, 2, undefined, () => {})).source,
    'trained for this run',
  );
});
