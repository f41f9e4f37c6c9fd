/**
 * The procedural flowers data set and the readers of Reed's layout and of manifests, on small sets the
 * tests make; every kind of bad data names the file it is in.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PETAL_COLOURS, type Species } from '../src/data/flowers.ts';
import { HELD_OUT_CAPTIONS, generateFlowers } from '../src/data/generate.ts';
import { ATTRIBUTE_NAMES, captionLabels, namedAttributes, readSpecies } from '../src/data/attributes.ts';
import {
  CaptionEmbeddings,
  type GanBatchOptions,
  TrainingSet,
  colourGroups,
  ganBatch,
  recolour,
  styleBatch,
} from '../src/train/data.ts';
import { textRows } from '../src/train/shards.ts';
import { defaultModelConfig } from '../src/model/config.ts';
import { Rng } from '../src/model/random.ts';
import { indexDataset, loadRgb } from '../src/data/layout.ts';
import { createCanvas } from '@napi-rs/canvas';
import { encodePng } from '../src/images/png.ts';
import { initBackend } from '../src/model/backend.ts';

let root = '';
let flowers = '';

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ganvas-data-'));
  flowers = join(root, 'flowers');
  await generateFlowers({ out: flowers, images: 60, size: 32, seed: 3 });
  await initBackend('wasm');
});

test('held-out phrasings: per class, naming the petal colour, in wording the training grammar never uses', async () => {
  const index = await indexDataset(flowers);
  const phrased = JSON.parse(await readFile(join(flowers, HELD_OUT_CAPTIONS), 'utf8')) as Record<string, string[]>;
  const species = JSON.parse(await readFile(join(flowers, 'species.json'), 'utf8')) as Species[];
  assert.deepEqual(Object.keys(phrased).sort(), species.map((s) => s.id).sort());
  const training = new Set(index.samples.flatMap((s) => s.captions));
  const trainingWords = new Set([...training].flatMap((c) => c.split(/[^a-z0-9]+/)));
  for (const s of species) {
    assert.equal(phrased[s.id].length, 10);
    for (const c of phrased[s.id]) {
      assert.ok(!training.has(c), c);
      assert.ok(namedAttributes(c, s).includes('petalColour'), c);
      // every held-out caption has a word that no training caption has
      assert.ok(
        c.split(/[^a-z0-9]+/).some((w) => w && !trainingWords.has(w)),
        `${c} reads like the training grammar`,
      );
    }
  }
});

test('caption embeddings are computed once per text encoder and read back from the cache', async () => {
  const set = await TrainingSet.load(flowers, 32);
  let calls = 0;
  const embed = (captions: string[]) => {
    calls++;
    return captions.map((c) => Float32Array.from([c.length, c.charCodeAt(0)]));
  };
  const cache = join(root, 'embeddings');
  const first = await CaptionEmbeddings.cached(
    set.samples.map((s) => s.captions),
    embed,
    cache,
    [new Uint8Array([1])],
  );
  const afterFirst = calls;
  const again = await CaptionEmbeddings.cached(
    set.samples.map((s) => s.captions),
    embed,
    cache,
    [new Uint8Array([1])],
  );
  assert.equal(calls, afterFirst);
  assert.deepEqual(
    again.table.map((r) => r.map((v) => [...v])),
    first.table.map((r) => r.map((v) => [...v])),
  );
  await CaptionEmbeddings.cached(
    set.samples.map((s) => s.captions),
    embed,
    cache,
    [new Uint8Array([2])],
  ); // other weights: computed anew
  assert.ok(calls > afterFirst);
});

test("the text stage's batches carry what each caption says of each attribute, where the set is labelled", async () => {
  const set = await TrainingSet.load(flowers, 32);
  const config = defaultModelConfig({ imageSize: 32 });
  const unlabelled = set.textBatch(4, config, new Rng(5));
  assert.equal(unlabelled.labels, null);
  const { species } = await readSpecies(flowers, 'this test');
  set.labelCaptions((caption, classId) => captionLabels(caption, species.get(classId)!));
  const b = set.textBatch(4, config, new Rng(5));
  assert.deepEqual(b.labels!.shape, [4, ATTRIBUTE_NAMES.length]);
  // the same draws as unlabelled, and each row's labels are those of the caption its ids spell
  assert.deepEqual([...b.ids!.data], [...unlabelled.ids!.data]);
  assert.deepEqual([...b.images!.data], [...unlabelled.images!.data]);
  const { alphabet } = config.text;
  const labels = b.labels!.data;
  for (let k = 0; k < 4; k++) {
    const row = [...b.ids!.data.slice(k * config.text.maxLength, (k + 1) * config.text.maxLength)];
    const caption = row
      .filter((i) => i >= 0)
      .map((i) => alphabet[i])
      .join('');
    const sample = set.samples.find((x) => x.captions.some((c) => c.toLowerCase() === caption))!;
    const expected = captionLabels(caption, species.get(sample.classId)!);
    assert.deepEqual([...labels.slice(k * 5, k * 5 + 5)], [...expected], caption);
  }
  await assert.rejects(readSpecies(root, '--text-attributes'), /--text-attributes needs the procedural/);
});

test('real images cropped at the centre are the centre crop or its mirror; random crops move', async () => {
  const set = await TrainingSet.load(flowers, 32);
  const picks = Array.from({ length: 24 }, (_, i) => i);
  const centre = set.centred(picks);
  const rows = centre.arraySync();
  centre.dispose();
  const mirrored = rows.map((img) => img.map((row) => [...row].reverse()));
  const seen = (crop: 'random' | 'centre') => {
    const { data } = set.augmented(picks, new Rng(4), crop);
    const size = 32 * 32 * 3;
    return picks.map((_, b) => {
      const img = [...data.subarray(b * size, (b + 1) * size)];
      const as = (ref: number[][][]) => ref.flat(2).every((v, k) => Math.abs(v - img[k]) < 1e-6);
      return as(rows[b]) ? 'centre' : as(mirrored[b]) ? 'mirror' : 'moved';
    });
  };
  const centred = seen('centre');
  assert.ok(centred.includes('centre') && centred.includes('mirror') && !centred.includes('moved'), centred.join());
  assert.ok(seen('random').filter((k) => k === 'moved').length > 12);
});

test('a style batch draws z and the conditioning noise as served, and the same captions at any scale', async () => {
  const set = await TrainingSet.load(flowers, 32);
  const embed = (captions: string[]) => captions.map((c) => Float32Array.from([c.length, c.charCodeAt(1)]));
  const emb = await CaptionEmbeddings.cached(
    set.samples.map((s) => s.captions),
    embed,
    join(root, 'style-embeddings'),
    [new Uint8Array([3])],
  );
  const served = { zDim: 5, noiseScale: 1, projDim: 3, conditioningNoise: 0 };
  for (const single of [false, true]) {
    const one = styleBatch(set, emb, 4, served, new Rng(2), single);
    const wide = styleBatch(set, emb, 4, { ...served, noiseScale: 2.5 }, new Rng(2), single);
    assert.deepEqual(wide.h, one.h);
    assert.deepEqual(wide.z!.shape, [4, 5]);
    assert.deepEqual(
      [...wide.z!.data],
      [...one.z!.data].map((v) => Math.fround(2.5 * v)),
    );
    assert.equal(one.eps, null);
    // sampled conditioning: its noise drawn after z, so z and the captions are those of the same stream without it
    const sampled = styleBatch(set, emb, 4, { ...served, conditioningNoise: 1.5 }, new Rng(2), single);
    const unit = styleBatch(set, emb, 4, { ...served, conditioningNoise: 1 }, new Rng(2), single);
    assert.deepEqual([sampled.h, sampled.z], [one.h, one.z]);
    assert.deepEqual(sampled.eps!.shape, [4, 3]);
    assert.deepEqual(
      [...sampled.eps!.data],
      [...unit.eps!.data].map((v) => Math.fround(1.5 * v)),
    );
  }
});

test('recolouring: two colours swapped or one replaced, in every caption alike, whole words only', () => {
  const captions = [
    'this flower has red petals and a white centre',
    'a bored red blossom, its middle white',
    'the petals are red',
  ];
  assert.deepEqual(recolour(captions, 'swap', new Rng(1)), [
    'this flower has white petals and a red centre',
    'a bored white blossom, its middle red',
    'the petals are white',
  ]);
  for (let seed = 1; seed < 20; seed++) {
    const replaced = recolour(captions, 'replace', new Rng(seed));
    const colour = replaced[2].split(' ').at(-1)!;
    assert.ok(!['red', 'white'].includes(colour), colour);
    assert.deepEqual(
      replaced,
      captions.map((c) => c.replaceAll(' red', ` ${colour}`)),
    );
  }
  // one colour named: swapping replaces it; none named: no wrong text of this kind
  const one = recolour(['Blue petals'], 'swap', new Rng(2));
  assert.match(one[0], /^[a-z]+ petals$/);
  assert.notEqual(one[0], 'blue petals');
  assert.deepEqual(recolour(['a flower'], 'swap', new Rng(2)), []);
  assert.deepEqual(colourGroups([['red petals, white centre', 'red'], ['a flower'], ['white petals'], ['red']]), [
    [0, 3],
    [2],
  ]);
});

test("a GAN batch's wrong texts: a share the image's own recoloured captions, the rest another class's", async () => {
  const set = await TrainingSet.load(flowers, 32);
  const n = set.samples.length;
  const table = (at: number, empty = -1) =>
    Array.from({ length: n }, (_, i) => (i === empty ? [] : [Float32Array.from([at + i])]));
  const emb = new CaptionEmbeddings(table(0), 1);
  const options: GanBatchOptions = {
    size: 64,
    zDim: 2,
    interpolate: false,
    pairNoise: false,
    epsDim: 0,
    translate: 0,
    crop: 'random',
    hardNegatives: 0,
    recoloured: [new CaptionEmbeddings(table(1000, 0), 1), new CaptionEmbeddings(table(2000, 0), 1)],
    colourBalance: 0,
    colourGroups: [[0], [1, 2]],
  };
  const rows = (b: ReturnType<typeof ganBatch>, key: 'h' | 'hWrong') => [...b[key]!.data].map((v) => Math.round(v));
  const classOf = (i: number) => set.samples[i].classId;
  // off: another class's captions, and the tables given change no draw
  const off = ganBatch(set, emb, options, new Rng(4));
  assert.deepEqual(off, ganBatch(set, emb, { ...options, recoloured: [], colourGroups: [] }, new Rng(4)));
  const picks = rows(off, 'h');
  rows(off, 'hWrong').forEach((w, b) => assert.notEqual(classOf(w), classOf(picks[b])));
  // all: the image's own recoloured captions, of either edit; where it has none, another class's
  const hard = ganBatch(set, emb, { ...options, hardNegatives: 1 }, new Rng(4));
  const own = rows(hard, 'h');
  const wrong = rows(hard, 'hWrong');
  const kinds = new Set<number>();
  wrong.forEach((w, b) => {
    if (own[b] === 0) return assert.ok(w < 1000 && classOf(w) !== classOf(0), String(w));
    assert.equal(w % 1000, own[b]);
    kinds.add(Math.floor(w / 1000));
  });
  assert.deepEqual([...kinds].sort(), [1, 2]);
  // balanced by colour: every image from a group, a group at random
  const picked = rows(ganBatch(set, emb, { ...options, colourBalance: 1 }, new Rng(4)), 'h');
  assert.ok(
    picked.every((i) => i <= 2),
    picked.join(),
  );
  const zeros = picked.filter((i) => i === 0).length;
  assert.ok(zeros > 16 && zeros < 48, String(zeros));
});

test("the training gain: how far a mean of 4 captions' phi lies from the mean, relative to one caption's", () => {
  const v = (...x: number[]) => Float32Array.from(x);
  // two images about the mean 0: each image's captions 2 +- 1 (between 4, within 1): (4 + 1/4) / (4 + 1)
  const spread = new CaptionEmbeddings(
    [
      [v(1), v(3)],
      [v(-1), v(-3)],
    ],
    1,
  );
  assert.ok(Math.abs(spread.trainingGain() - Math.sqrt(4.25 / 5)) < 1e-6, String(spread.trainingGain()));
  // captions of one image alike: a mean of 4 is any one of them
  const alike = new CaptionEmbeddings(
    [
      [v(2, 1), v(2, 1)],
      [v(-2, 0), v(-2, 0)],
    ],
    2,
  );
  assert.ok(Math.abs(alike.trainingGain() - 1) < 1e-6);
  // and it is what vector() draws: the sampled ratio of squared distances
  const rng = new Rng(5);
  let four = 0;
  for (let k = 0; k < 20000; k++) four += spread.vector(k % 2, rng)[0] ** 2;
  assert.ok(Math.abs(Math.sqrt(four / 20000 / 5) - spread.trainingGain()) < 0.01);
});

test('the flowers set: class-disjoint split, ten captions an image naming the petal colour, style per image', async () => {
  const index = await indexDataset(flowers);
  assert.equal(index.samples.length, 60);
  assert.equal(index.trainClasses.length, 40);
  assert.equal(index.testClasses.length, 10);
  assert.equal(index.trainClasses.filter((c) => index.testClasses.includes(c)).length, 0);
  const species = JSON.parse(await readFile(join(flowers, 'species.json'), 'utf8')) as {
    id: string;
    petalColour: string;
  }[];
  for (const s of index.samples) {
    assert.equal(s.captions.length, 10);
    const colour = species.find((sp) => sp.id === s.classId)!.petalColour;
    assert.ok(
      s.captions.every((c) => c.includes(colour)),
      `${s.key}: ${s.captions.join(' | ')}`,
    );
    assert.ok(
      s.captions.every((c) => PETAL_COLOURS.filter((p) => p !== colour).every((p) => !c.includes(`${p} petals`))),
    );
  }
  assert.ok(new Set(index.samples.flatMap((s) => s.captions)).size > 300, 'captions vary');
  const styles = (await readFile(join(flowers, 'styles.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(styles.length, 60);
  assert.ok(new Set(styles.map((s) => s.background)).size > 2);
  const rgb = await loadRgb(index.samples[0].imagePath, 16);
  assert.equal(rgb.length, 16 * 16 * 3);
});

test('the same seed makes the same data set', async () => {
  const again = join(root, 'again');
  await generateFlowers({ out: again, images: 60, size: 32, seed: 3 });
  for (const f of [
    'species.json',
    'styles.jsonl',
    'text_c10/class_001/image_00001.txt',
    'images/class_001/image_00001.png',
  ])
    assert.deepEqual(await readFile(join(again, f)), await readFile(join(flowers, f)), f);
});

test('a data set regenerated into its folder replaces the old one; a folder of other files or bad counts are refused', async () => {
  const folder = join(root, 'regenerated');
  await generateFlowers({ out: folder, images: 60, size: 32, seed: 3 });
  await generateFlowers({ out: folder, images: 20, size: 32, seed: 5, species: 10, testSpecies: 2 });
  // no image of the larger set stays behind (its captions no longer matched anything)
  const images = (await readdir(join(folder, 'images'), { recursive: true })).filter((f) => f.endsWith('.png'));
  assert.equal(images.length, 20);
  assert.equal((await readFile(join(folder, 'styles.jsonl'), 'utf8')).trim().split('\n').length, 20);
  const other = join(root, 'not-a-data-set');
  await mkdir(other, { recursive: true });
  await writeFile(join(other, 'notes.txt'), 'mine\n');
  await assert.rejects(generateFlowers({ out: other, images: 20, size: 32, seed: 1 }), /not empty and not a data set/);
  assert.equal(await readFile(join(other, 'notes.txt'), 'utf8'), 'mine\n');
  const bad = (species: number, testSpecies: number) =>
    generateFlowers({ out: join(root, 'bad'), images: 20, size: 32, seed: 1, species, testSpecies });
  await assert.rejects(bad(0, 1), /--species must be between 2 and 1000/);
  await assert.rejects(bad(100_000, 1), /--species must be between 2 and 1000/);
  await assert.rejects(bad(10, 10), /--test-species must be at least 1 and below --species/);
});

test("Reed's Oxford-102 layout (jpg/ flat, text_c10/<class>/, class lists) and CUB layout (images/<class>/) are read", async () => {
  const canvas = createCanvas(20, 20);
  canvas.getContext('2d').fillRect(0, 0, 10, 10);
  const oxford = join(root, 'oxford');
  await mkdir(join(oxford, 'jpg'), { recursive: true });
  for (const [cls, img] of [
    ['class_00001', 'image_00001'],
    ['class_00002', 'image_00002'],
  ]) {
    await mkdir(join(oxford, 'text_c10', cls), { recursive: true });
    await writeFile(join(oxford, 'jpg', `${img}.jpg`), canvas.toBuffer('image/jpeg'));
    await writeFile(join(oxford, 'text_c10', cls, `${img}.txt`), 'this flower has petals\nthe petals are pink\n');
  }
  await writeFile(join(oxford, 'trainvalclasses.txt'), 'class_00001\n');
  await writeFile(join(oxford, 'testclasses.txt'), 'class_00002\n');
  const o = await indexDataset(oxford);
  assert.deepEqual(
    o.samples.map((x) => [
      x.classId,
      x.imagePath.endsWith('jpg/image_00001.jpg') || x.imagePath.endsWith('jpg/image_00002.jpg'),
      x.captions.length,
    ]),
    [
      ['class_00001', true, 2],
      ['class_00002', true, 2],
    ],
  );
  assert.deepEqual([o.trainClasses, o.testClasses], [['class_00001'], ['class_00002']]);
  assert.equal((await loadRgb(o.samples[0].imagePath, 8)).length, 8 * 8 * 3);

  const cub = join(root, 'cub');
  await mkdir(join(cub, 'images', '001.Black_footed_Albatross'), { recursive: true });
  await mkdir(join(cub, 'text_c10', '001.Black_footed_Albatross'), { recursive: true });
  await writeFile(
    join(cub, 'images', '001.Black_footed_Albatross', 'Black_Footed_Albatross_0001_796111.jpg'),
    canvas.toBuffer('image/jpeg'),
  );
  await writeFile(
    join(cub, 'text_c10', '001.Black_footed_Albatross', 'Black_Footed_Albatross_0001_796111.txt'),
    'a large grey bird\n',
  );
  const c = await indexDataset(cub);
  assert.equal(c.samples.length, 1);
  assert.deepEqual(c.trainClasses, ['001.Black_footed_Albatross']); // no class lists: every class trains
});

test('a manifest of image paths and captions is read', async () => {
  const dir = join(root, 'manifest');
  await mkdir(dir);
  await writeFile(join(dir, 'a.png'), encodePng(new Uint8Array(8 * 8 * 3).fill(200), 8, 8));
  await writeFile(
    join(dir, 'manifest.jsonl'),
    `${JSON.stringify({ image: 'a.png', captions: ['a grey square', 'grey'], class: 'squares' })}\n`,
  );
  const index = await indexDataset(dir);
  assert.equal(index.samples.length, 1);
  assert.deepEqual(index.samples[0].captions, ['a grey square', 'grey']);
  assert.deepEqual(index.trainClasses, ['squares']);
});

test('bad data is a clear error naming the file', async () => {
  const reed = join(root, 'broken');
  await generateFlowers({ out: reed, images: 4, size: 16, seed: 4, species: 4, testSpecies: 1 });
  const cls = (await readdir(join(reed, 'text_c10')))[0];
  const name = (await readdir(join(reed, 'text_c10', cls)))[0].replace('.txt', '');
  await writeFile(join(reed, 'text_c10', cls, `${name}.txt`), '\n\n');
  await assert.rejects(
    indexDataset(reed),
    (e: Error) => e.message.includes(`no captions in`) && e.message.includes(`${name}.txt`),
  );
  await writeFile(join(reed, 'text_c10', cls, `${name}.txt`), 'a caption\n');
  await rm(join(reed, 'images', cls, `${name}.png`));
  await assert.rejects(
    indexDataset(reed),
    (e: Error) => e.message.includes('missing image') && e.message.includes(name),
  );

  const dir = join(root, 'bad-manifest');
  await mkdir(dir);
  await writeFile(join(dir, 'broken.png'), 'not a png');
  await writeFile(join(dir, 'manifest.jsonl'), '{"image": "broken.png", "captions": ["x"]}\n{oops\n');
  await assert.rejects(
    indexDataset(dir),
    (e: Error) => e.message.includes('manifest.jsonl:2') && e.message.includes('not valid JSON'),
  );
  await writeFile(join(dir, 'manifest.jsonl'), '{"image": "broken.png", "captions": []}\n');
  await assert.rejects(indexDataset(dir), (e: Error) => e.message.includes('no captions for broken.png'));
  await writeFile(join(dir, 'manifest.jsonl'), '{"image": "gone.png", "captions": ["x"]}\n');
  await assert.rejects(
    indexDataset(dir),
    (e: Error) => e.message.includes('missing image') && e.message.includes('gone.png'),
  );
  await assert.rejects(
    loadRgb(join(dir, 'broken.png'), 8),
    (e: Error) => e.message.includes('unreadable image') && e.message.includes('broken.png'),
  );
  await assert.rejects(indexDataset(join(root, 'nothing-here')), /not a data set/);
});

test('a text batch takes one image a class, cut to a multiple of the shards (16 cores, 40 classes: 32)', () => {
  assert.equal(textRows(32, 40, 2), 32);
  assert.equal(textRows(128, 40, 16), 32); // 40 rows in 16 shards were 2.5 rows a shard
  assert.equal(textRows(64, 40, 1), 40);
  assert.throws(() => textRows(64, 8, 16), /8 classes cannot fill 16 shards/);
});

test('the attributes a caption names: whole words, so "around" and "surrounded" do not name round petals', () => {
  const s: Species = {
    id: 'x',
    petalColour: 'pink',
    petalCount: 5,
    petalShape: 'round',
    centreColour: 'green',
    centreSize: 'small',
    tipColour: null,
  };
  assert.deepEqual(namedAttributes('a tiny green stamen is surrounded by five pink petals', s), [
    'petalColour',
    'petalCount',
    'centreColour',
    'centreSize',
  ]);
  assert.deepEqual(namedAttributes('pink petals around a centre', s), ['petalColour']);
  assert.deepEqual(namedAttributes('five round pink petals', s), ['petalColour', 'petalCount', 'petalShape']);
  assert.deepEqual(namedAttributes('Broad Round petals', s), ['petalShape']);
  assert.deepEqual(namedAttributes('oval petals', s), ['petalShape']); // as labels: a class index where named, -1 where not (petal colour, count, shape, centre colour, centre size)
  assert.deepEqual([...captionLabels('five pink petals around a green centre', s)], [6, 2, -1, 5, -1]);
});
