/**
 * The evaluation's picture measures on hand-made images (src/eval/pictures.ts), how it splits the Fréchet sets, and
 * its breakdown of unseen species.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Species } from '../src/data/flowers.ts';
import { ATTRIBUTES, type Attribute, labelsOf } from '../src/data/attributes.ts';
import { frechetSplit, phiReads, phiReadsRight, unseenBreakdown } from '../src/eval/evaluate.ts';
import { clusterAuc, frechetDistance, nearestMeanLabels, rocAuc } from '../src/eval/metrics.ts';
import { artefactEnergy, backgroundColour, foregroundShare, meanPairwiseDistance } from '../src/eval/pictures.ts';

const S = 16;
const image = (f: (x: number, y: number) => [number, number, number]) => {
  const out = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out.set(f(x, y), (y * S + x) * 3);
  return out;
};

test('artefact energy: a one-pixel checkerboard scores high, flat colour, a gradient and a straight edge score 0, grain in between', () => {
  const checker = artefactEnergy(
    image((x, y) => ((x + y) % 2 ? [255, 255, 255] : [0, 0, 0])),
    S,
  );
  assert.equal(checker, 1);
  assert.equal(
    artefactEnergy(
      image(() => [40, 90, 200]),
      S,
    ),
    0,
  );
  assert.equal(
    artefactEnergy(
      image((x) => [x * 10, x * 10, x * 10]),
      S,
    ),
    0,
  );
  assert.equal(
    artefactEnergy(
      image((x) => (x < 8 ? [0, 0, 0] : [255, 255, 255])),
      S,
    ),
    0,
  );
  let seed = 1;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 32) + 100;
  const grain = artefactEnergy(
    image(() => [noise(), noise(), noise()]),
    S,
  );
  assert.ok(grain > 0 && grain < checker / 10, `${grain}`);
});

test('foreground: an empty frame has none; a disc on a background is its share; the background is the border colour', () => {
  const empty = image(() => [60, 85, 45]);
  assert.equal(foregroundShare(empty, S), 0);
  assert.deepEqual(backgroundColour(empty, S), [60, 85, 45]);
  const disc = image((x, y) => (Math.hypot(x - 7.5, y - 7.5) < 4 ? [214, 40, 40] : [60, 85, 45]));
  const inside = Array.from({ length: S * S }, (_, i) => Math.hypot((i % S) - 7.5, Math.floor(i / S) - 7.5) < 4).filter(
    Boolean,
  ).length;
  assert.equal(foregroundShare(disc, S), inside / (S * S));
  // a colour close to the background (the data set jitters backgrounds) is not foreground
  assert.equal(
    foregroundShare(
      image((x) => (x > 8 ? [70, 95, 50] : [60, 85, 45])),
      S,
    ),
    0,
  );
});

test('spread: mean pairwise distance', () => {
  assert.equal(meanPairwiseDistance([new Float32Array([0, 0]), new Float32Array([3, 4])]), 5);
  assert.equal(meanPairwiseDistance([new Float32Array([1, 1]), new Float32Array([1, 1]), new Float32Array([1, 1])]), 0);
  assert.equal(meanPairwiseDistance([new Float32Array([1])]), 0);
});

test("the Fréchet distance's sets: each class's images alternate between drawn and reference, so both hold the same classes", () => {
  const classes = ['a', 'b', 'a', 'c', 'a', 'b', 'c', 'c', 'a', 'b', 'b'];
  const { drawn, reference } = frechetSplit(
    classes.map((_, i) => i),
    (i) => classes[i],
  );
  assert.deepEqual(drawn, [0, 1, 3, 4, 7, 9]);
  assert.deepEqual(reference, [2, 5, 6, 8, 10]);
  const count = (ids: number[], c: string) => ids.filter((i) => classes[i] === c).length;
  for (const c of ['a', 'b', 'c'])
    assert.ok(count(drawn, c) - count(reference, c) <= 1 && count(drawn, c) >= count(reference, c));
});

test('unseen species one by one: petal colour drawn, what was drawn instead, and how many training species had the colour', () => {
  const species = (
    id: string,
    petalColour: Species['petalColour'],
    centreColour: Species['centreColour'],
  ): Species => ({
    id,
    petalColour,
    petalCount: 5,
    petalShape: 'round',
    centreColour,
    centreSize: 'small',
    tipColour: null,
  });
  const all = [
    species('a', 'pink', 'green'),
    species('b', 'orange', 'black'),
    species('t1', 'pink', 'yellow'),
    species('t2', 'red', 'green'),
    species('t3', 'red', 'black'),
  ];
  const byId = new Map(all.map((s) => [s.id, s]));
  const truth = (s: Species) => labelsOf(s);
  // species a: 4 captions naming the petal colour (2 drawn pink, 1 blue, 1 red) and one naming only the centre (right)
  // phi's reading of each caption's petal colour beside it (pink three times of a's four that name it)
  const drawn = (cls: string, petals: string, named: Attribute[], phiRead = petals) => ({
    cls,
    named,
    truth: truth(byId.get(cls)!),
    predicted: { ...truth(byId.get(cls)!), petalColour: ATTRIBUTES.petalColour.indexOf(petals) },
    phiPetalColour: named.includes('petalColour') ? ATTRIBUTES.petalColour.indexOf(phiRead) : undefined,
  });
  const rows = [
    drawn('a', 'pink', ['petalColour']),
    drawn('a', 'pink', ['petalColour', 'centreColour']),
    drawn('a', 'blue', ['petalColour'], 'pink'),
    drawn('a', 'red', ['petalColour']),
    drawn('a', 'blue', ['centreColour']), // petal colour not named: not counted as drawn instead
    drawn('b', 'red', ['petalColour']),
    drawn('b', 'red', ['petalColour']),
  ];
  const [a, b] = unseenBreakdown(rows, byId, new Set(['a', 'b']));
  assert.equal(a.species, 'a');
  assert.equal(a.attributes, 'pink petals, green centre, 5 round petals, small centre');
  assert.equal(a.trainingWithItsPetals, 1);
  assert.equal(a.petalColour, 2 / 4);
  assert.deepEqual(a.drawnInstead, { blue: 1, red: 1 });
  assert.equal(a.phiReadsPetalColour, 3 / 4);
  assert.equal(b.phiReadsPetalColour, 0);
  assert.equal(a.all, 4 / 6);
  assert.equal(b.trainingWithItsPetals, 0);
  assert.equal(b.petalColour, 0);
  assert.deepEqual(b.drawnInstead, { red: 2 });
});

test('the nearest-mean probe reads a label off vectors by the closest class mean', () => {
  const v = (...x: number[]) => Float32Array.from(x);
  // labels 1 and 2 lie along +x and +y of a common offset (10, 10), as captions' phi share most of their direction
  const known = [
    { v: v(12, 10), label: 1 },
    { v: v(13, 10), label: 1 },
    { v: v(10, 12), label: 2 },
    { v: v(10, 13), label: 2 },
  ];
  assert.deepEqual(nearestMeanLabels(known, [v(14, 9), v(9, 14), v(12, 11), v(10.5, 11.5)]), [1, 2, 1, 2]);
});

test('the phi probe reads each attribute a caption names off its phi, training and unseen species apart', () => {
  const v = (...x: number[]) => Float32Array.from(x);
  const labels = (centreSize: number, centreColour: number) => ({
    ...labelsOf({
      id: '',
      petalColour: 'red',
      petalCount: 5,
      petalShape: 'round',
      centreColour: 'black',
      centreSize: 'small',
      tipColour: null,
    }),
    centreSize,
    centreColour,
  });
  // centre size along +x (0) and +y (1) of a common offset; centre colour not named by the training species' rows
  const row = (cls: string, size: number, named: Attribute[], h: Float32Array) => ({
    cls,
    named,
    truth: labels(size, 2),
    h,
  });
  const rows = [
    row('t1', 0, ['centreSize'], v(12, 10)),
    row('t1', 0, ['centreSize'], v(13, 10)),
    row('t2', 1, ['centreSize'], v(10, 12)),
    row('t2', 1, ['centreSize', 'centreColour'], v(10, 13)),
    row('u', 1, ['centreSize'], v(10, 14)), // read right
    row('u', 1, ['centreSize'], v(14, 10)), // read as small
    row('u', 1, ['petalColour'], v(9, 14)), // names no centre size
  ];
  const unseen = new Set(['u']);
  assert.deepEqual(phiReads(rows, unseen, 'centreSize'), [0, 0, 1, 1, 1, 0, undefined]);
  assert.deepEqual(phiReadsRight(rows, unseen, 'centreSize', phiReads(rows, unseen, 'centreSize')), {
    train: 1,
    unseen: 1 / 2,
  });
  // one training row names a centre colour: the only value there is to read, and no unseen row names one
  const u = undefined;
  assert.deepEqual(phiReads(rows, unseen, 'centreColour'), [u, u, u, 2, u, u, u]);
  assert.deepEqual(phiReadsRight(rows, unseen, 'centreColour', phiReads(rows, unseen, 'centreColour')), {
    train: 1,
    unseen: null,
  });
});

test("the Fréchet distance: zero for a set against itself, and the closed form where the covariances' root is known", () => {
  // 4 points +-s L e_i have mean 0 and sample covariance (divisor n - 1) L L^T when s^2 = 3/2
  const s = Math.sqrt(1.5);
  const pairs = (cols: number[][], shift = [0, 0]) =>
    cols.flatMap((c) => [1, -1].map((sign) => Float32Array.from(c.map((v, i) => shift[i] + sign * s * v))));
  // C1 = [[2, 1], [1, 2]] (Cholesky columns), C2 = I shifted by (3, 4)
  const a = pairs([
    [Math.SQRT2, Math.SQRT1_2],
    [0, Math.sqrt(1.5)],
  ]);
  const b = pairs(
    [
      [1, 0],
      [0, 1],
    ],
    [3, 4],
  );
  assert.ok(Math.abs(frechetDistance(a, a)) < 1e-6);
  // |mu1 - mu2|^2 + tr C1 + tr C2 - 2 tr (C1 C2)^(1/2) = 25 + 4 + 2 - 2 (sqrt 3 + 1): C1's eigenvalues are 3 and 1
  assert.ok(Math.abs(frechetDistance(a, b) - (31 - 2 * (Math.sqrt(3) + 1))) < 1e-4, String(frechetDistance(a, b)));
  assert.ok(Math.abs(frechetDistance(a, b) - frechetDistance(b, a)) < 1e-4);
});

test('ROC AUC counts ties half; same-cluster pairs of a clean clustering score 1', () => {
  assert.equal(rocAuc([3, 4], [1, 2]), 1);
  assert.equal(rocAuc([1, 2], [3, 4]), 0);
  assert.equal(rocAuc([1], [1]), 0.5);
  assert.equal(rocAuc([2, 2, 3], [1, 2]), 5 / 6);
  const vectors = Array.from({ length: 40 }, (_, i) => Float32Array.from(i % 2 ? [1, 0.01 * i, 0] : [0, 0.01 * i, 1]));
  assert.equal(
    clusterAuc(
      vectors,
      vectors.map((_, i) => i % 2),
    ),
    1,
  );
  const shuffled = clusterAuc(
    vectors,
    vectors.map((_, i) => Math.floor(i / 2) % 2),
  );
  assert.ok(Math.abs(shuffled - 0.5) < 0.1, String(shuffled));
});
