/**
 * How ganvas mixes two vectors (caption embeddings, noise vectors) for interpolations: linearly about a
 * centre, then scaled so the mixed vector's distance from the centre is the mix of the ends' distances
 * (docs/method.md §INT). Plain linear interpolation pulls the middle towards the centre: the default model's
 * centred embeddings of two captions with different colours point almost opposite ways (cosine -0.19), so
 * the middle frame's vector was near the captions' mean and G drew an empty background there; noise vectors
 * in 100 dimensions are nearly orthogonal, so the linear middle has 0.71 of the norm a sample of N(0, I) has.
 * No TensorFlow.js: the job loop and the evaluation call it on plain arrays.
 */

const norm = (v: Float32Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

/** a at t = 0, b at t = 1; `centre` absent = the origin (noise vectors). */
export function interpolate(a: Float32Array, b: Float32Array, t: number, centre?: Float32Array): Float32Array {
  if (t === 0) return a.slice();
  if (t === 1) return b.slice();
  const at = (v: Float32Array, d: number) => v[d] - (centre ? centre[d] : 0);
  const mixed = a.map((_, d) => (1 - t) * at(a, d) + t * at(b, d));
  const length = norm(mixed);
  // the ends exactly opposite about the centre and t = 1/2: no direction to keep, the centre it is
  const k =
    length > 1e-6 ? ((1 - t) * norm(a.map((_, d) => at(a, d))) + t * norm(b.map((_, d) => at(b, d)))) / length : 1;
  return mixed.map((v, d) => v * k + (centre ? centre[d] : 0));
}
