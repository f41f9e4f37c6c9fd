/**
 * A flat binary file of named float tensors with a JSON manifest beside it. float16 halves the size of
 * inference checkpoints; training checkpoints stay float32 so resuming is exact.
 */
import { readFile, writeFile } from 'node:fs/promises';

export type StoredDtype = 'float32' | 'float16';

export interface TensorEntry {
  name: string;
  shape: number[];
  dtype: StoredDtype;
  /** Byte offset in the .bin file. */
  offset: number;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half from float, round to nearest even (overflow -> inf, tiny -> subnormal or 0). */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The tensors back to back in one buffer (float32 or float16) and where each is. */
export function encodeTensors(
  tensors: { name: string; shape: number[]; values: Float32Array }[],
  dtype: StoredDtype,
): { bytes: Buffer; entries: TensorEntry[] } {
  const bytesPer = dtype === 'float16' ? 2 : 4;
  const total = tensors.reduce((n, t) => n + t.values.length * bytesPer, 0);
  const buf = Buffer.alloc(total);
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const t of tensors) {
    entries.push({ name: t.name, shape: t.shape, dtype, offset });
    if (dtype === 'float32') Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength).copy(buf, offset);
    else t.values.forEach((v, i) => buf.writeUInt16LE(toHalf(v), offset + 2 * i));
    offset += t.values.length * bytesPer;
  }
  return { bytes: buf, entries };
}

export async function writeTensors(
  binPath: string,
  tensors: { name: string; shape: number[]; values: Float32Array }[],
  dtype: StoredDtype,
): Promise<TensorEntry[]> {
  const { bytes, entries } = encodeTensors(tensors, dtype);
  await writeFile(binPath, bytes);
  return entries;
}

/** The tensors `entries` names out of `buf` (read from `source`, named in errors). */
export function decodeTensors(buf: Buffer, entries: TensorEntry[], source: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of entries) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    const bytesPer = e.dtype === 'float16' ? 2 : 4;
    if (e.offset + n * bytesPer > buf.length) throw new Error(`${source} is truncated (tensor ${e.name})`);
    if (e.dtype === 'float32') for (let i = 0; i < n; i++) values[i] = buf.readFloatLE(e.offset + 4 * i);
    else for (let i = 0; i < n; i++) values[i] = fromHalf(buf.readUInt16LE(e.offset + 2 * i));
    out.set(e.name, values);
  }
  return out;
}

export async function readTensors(binPath: string, entries: TensorEntry[]): Promise<Map<string, Float32Array>> {
  return decodeTensors(await readFile(binPath), entries, binPath);
}

/**
 * One group of TensorFlow.js's weights manifest (tf.io.WeightsManifestConfig): tensors stored back to back in `paths`.
 */
export interface TfjsWeightsGroup {
  paths: string[];
  weights: { name: string; shape: number[]; dtype: 'float32'; quantization?: { dtype: 'float16' } }[];
}

/**
 * The manifest of a weights file in TensorFlow.js's format, so standard tools read it
 * (`tf.io.decodeWeights(bytes, manifest[0].weights)`): float16 values are float32 tensors quantized to float16.
 */
export function toTfjsManifest(entries: TensorEntry[], bin: string): TfjsWeightsGroup[] {
  return [
    {
      paths: [bin],
      weights: entries.map((e) => ({
        name: e.name,
        shape: e.shape,
        dtype: 'float32',
        ...(e.dtype === 'float16' ? { quantization: { dtype: 'float16' as const } } : {}),
      })),
    },
  ];
}

/**
 * The entries of a TensorFlow.js weights manifest of one file (or of the offset list that checkpoints before it used).
 */
export function fromTfjsManifest(manifest: TfjsWeightsGroup[] | TensorEntry[]): TensorEntry[] {
  if (manifest.length === 0 || !('paths' in manifest[0])) return manifest as TensorEntry[];
  const groups = manifest as TfjsWeightsGroup[];
  if (groups.length !== 1) throw new Error(`a weights manifest with ${groups.length} groups: ganvas writes one`);
  let offset = 0;
  return groups[0].weights.map((w) => {
    const dtype: StoredDtype = w.quantization?.dtype === 'float16' ? 'float16' : 'float32';
    const entry = { name: w.name, shape: w.shape, dtype, offset };
    offset += w.shape.reduce((a, b) => a * b, 1) * (dtype === 'float16' ? 2 : 4);
    return entry;
  });
}
