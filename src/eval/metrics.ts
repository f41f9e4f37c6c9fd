/** The numbers of the evaluation: Fréchet distance between feature sets and ROC AUC of pair similarities. */

import { Rng } from '../model/random.ts';

type Matrix = Float64Array[];

function meanAndCovariance(xs: Float32Array[]): { mean: Float64Array; cov: Matrix } {
  const n = xs.length;
  const d = xs[0].length;
  const mean = new Float64Array(d);
  for (const x of xs) for (let i = 0; i < d; i++) mean[i] += x[i] / n;
  const cov: Matrix = Array.from({ length: d }, () => new Float64Array(d));
  for (const x of xs)
    for (let i = 0; i < d; i++) {
      const a = x[i] - mean[i];
      for (let j = i; j < d; j++) cov[i][j] += (a * (x[j] - mean[j])) / (n - 1);
    }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) cov[i][j] = cov[j][i];
  return { mean, cov };
}

/** Eigenvalues and eigenvectors of a symmetric matrix (cyclic Jacobi). */
function symmetricEigen(m: Matrix): { values: Float64Array; vectors: Matrix } {
  const n = m.length;
  const a = m.map((r) => Float64Array.from(r));
  const v: Matrix = Array.from({ length: n }, (_, i) => Float64Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] * a[p][q];
    if (off < 1e-18) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p],
            akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k],
            aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p],
            vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  return { values: Float64Array.from(a.map((r, i) => r[i])), vectors: v };
}

function multiply(a: Matrix, b: Matrix): Matrix {
  const n = a.length;
  const out: Matrix = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a[i][k];
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) out[i][j] += aik * b[k][j];
    }
  return out;
}

/**
 * ||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)). Tr((C1 C2)^(1/2)) = sum of sqrt(eig(C1^(1/2) C2 C1^(1/2))),
 * a symmetric matrix, so only symmetric eigendecompositions are needed.
 */
export function frechetDistance(a: Float32Array[], b: Float32Array[]): number {
  const A = meanAndCovariance(a);
  const B = meanAndCovariance(b);
  const n = A.mean.length;
  const e = symmetricEigen(A.cov);
  const sqrtA: Matrix = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += e.vectors[i][k] * Math.sqrt(Math.max(0, e.values[k])) * e.vectors[j][k];
      sqrtA[i][j] = s;
    }
  const m = multiply(multiply(sqrtA, B.cov), sqrtA);
  const traceSqrt = symmetricEigen(m).values.reduce((s, v) => s + Math.sqrt(Math.max(0, v)), 0);
  let dist = 0;
  for (let i = 0; i < n; i++) dist += (A.mean[i] - B.mean[i]) ** 2 + A.cov[i][i] + B.cov[i][i];
  return dist - 2 * traceSqrt;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb + 1e-12);
}

/**
 * Reads a label off vectors by the nearest class mean: each of `asked` gets the label whose mean over `known` it is
 * closest to in cosine, all of them centred first on the mean of every vector given. A probe with nothing learnt
 * on top of the vectors: what they themselves say of the label.
 */
export function nearestMeanLabels(known: { v: Float32Array; label: number }[], asked: Float32Array[]): number[] {
  const dim = (known[0] ?? { v: asked[0] }).v.length;
  const centre = new Float32Array(dim);
  const all = [...known.map((k) => k.v), ...asked];
  for (const v of all) for (let i = 0; i < dim; i++) centre[i] += v[i] / all.length;
  const centred = (v: Float32Array) => v.map((x, i) => x - centre[i]);
  const means = new Map<number, Float32Array>();
  for (const { v, label } of known) {
    const m = means.get(label) ?? new Float32Array(dim);
    const c = centred(v);
    const n = Math.hypot(...c) || 1;
    for (let i = 0; i < dim; i++) m[i] += c[i] / n;
    means.set(label, m);
  }
  return asked.map((v) => {
    const c = centred(v);
    let best = -1;
    let bestCos = -Infinity;
    for (const [label, m] of means) {
      const cos = cosine(c, m);
      if (cos > bestCos) [best, bestCos] = [label, cos];
    }
    return best;
  });
}

/** ROC AUC of scores for positives vs negatives (Mann-Whitney U, ties counted half). */
export function rocAuc(positives: number[], negatives: number[]): number {
  const all = [...positives.map((s) => ({ s, p: 1 })), ...negatives.map((s) => ({ s, p: 0 }))].sort(
    (x, y) => x.s - y.s,
  );
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j].s === all[i].s) j++;
    const rank = (i + j + 1) / 2; // average rank of the tie group, 1-based
    for (let k = i; k < j; k++) if (all[k].p) rankSum += rank;
    i = j;
  }
  const np = positives.length;
  return (rankSum - (np * (np + 1)) / 2) / (np * negatives.length);
}

/** AUC of cosine similarity for same-cluster vs different-cluster pairs of vectors. */
export function clusterAuc(vectors: Float32Array[], clusters: (string | number)[], pairs = 20000, seed = 1): number {
  // Rng, not a bare LCG's state % n: an LCG's low bits cycle (its last bit alternates), so consecutive draws i, j
  // always had different parities and some pairs were never drawn
  const rng = new Rng(seed);
  const same: number[] = [];
  const different: number[] = [];
  for (let k = 0; k < pairs; k++) {
    const i = rng.int(vectors.length);
    const j = rng.int(vectors.length);
    if (i === j) continue;
    (clusters[i] === clusters[j] ? same : different).push(cosine(vectors[i], vectors[j]));
  }
  return rocAuc(same, different);
}
