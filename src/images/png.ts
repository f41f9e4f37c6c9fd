/**
 * PNG encoding with text metadata (tEXt chunks: caption, seed, model, kind), and decoding of PNGs for the
 * style encoder. Pixels are RGB bytes, row-major.
 */
import { constants, crc32, deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

/** One PNG chunk: its length, type, data and CRC. */
export function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** tEXt is Latin-1: other characters go as iTXt (UTF-8), so a caption in any script survives. */
function textChunk(key: string, value: string): Buffer {
  if (/^[\x20-\x7e\n]*$/.test(value)) return chunk('tEXt', Buffer.from(`${key}\0${value}`, 'latin1'));
  return chunk('iTXt', Buffer.concat([Buffer.from(`${key}\0\0\0\0\0`, 'latin1'), Buffer.from(value, 'utf8')]));
}

/**
 * The scanlines of an RGB image, each with PNG's Paeth filter (type 4: a byte minus whichever of its left, upper
 * and upper-left neighbours best predicts it): a generated 64x64 picture deflates to 7.1 kB instead of 11.0 kB
 * unfiltered (docs/benchmarks.md, session 18), for 0.1 ms per image here.
 */
function scanlines(rgb: Uint8Array, width: number, height: number): Buffer {
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    const out = row + y + 1;
    raw[out - 1] = 4;
    for (let x = 0; x < stride; x++) {
      const a = x >= 3 ? rgb[row + x - 3] : 0;
      const b = y > 0 ? rgb[row + x - stride] : 0;
      const c = x >= 3 && y > 0 ? rgb[row + x - stride - 3] : 0;
      const pa = Math.abs(b - c); // |p - a| for the estimate p = a + b - c
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + b - c - c);
      raw[out + x] = rgb[row + x] - (pa <= pb && pa <= pc ? a : pb <= pc ? b : c); // modulo 256, as PNG's arithmetic is
    }
  }
  return raw;
}

/**
 * Deflated scanlines of an RGB image. Z_RLE (matches only of the byte before) suits Paeth's residuals: on 64
 * generated 64x64 pictures it deflates to 6.3 kB in 0.10 ms each, against 6.7 kB in 0.29 ms at zlib's default
 * (docs/benchmarks.md, session 32).
 */
const imageData = (rgb: Uint8Array, width: number, height: number): Buffer =>
  deflateSync(scanlines(rgb, width, height), { strategy: constants.Z_RLE });

function header(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  return chunk('IHDR', ihdr);
}

function assemble(width: number, height: number, text: Record<string, string>, idat: Buffer): Buffer {
  return Buffer.concat([
    SIGNATURE,
    header(width, height),
    ...Object.entries(text).map(([k, v]) => textChunk(k, v)),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export function encodePng(rgb: Uint8Array, width: number, height: number, text: Record<string, string> = {}): Buffer {
  return assemble(width, height, text, imageData(rgb, width, height));
}

/** An animated PNG (APNG) looping over `frames`, each shown `delayMs`; viewers without APNG show the first. */
export function encodeApng(
  frames: Uint8Array[],
  width: number,
  height: number,
  delayMs: number,
  text: Record<string, string> = {},
): Buffer {
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(frames.length, 0); // num_plays 0: loop for ever
  let sequence = 0;
  const parts: Buffer[] = [
    SIGNATURE,
    header(width, height),
    chunk('acTL', actl),
    ...Object.entries(text).map(([k, v]) => textChunk(k, v)),
  ];
  frames.forEach((rgb, i) => {
    const fctl = Buffer.alloc(26);
    fctl.writeUInt32BE(sequence++, 0);
    fctl.writeUInt32BE(width, 4);
    fctl.writeUInt32BE(height, 8);
    fctl.writeUInt16BE(delayMs, 20);
    fctl.writeUInt16BE(1000, 22); // delay = delayMs / 1000 s
    parts.push(chunk('fcTL', fctl));
    const data = imageData(rgb, width, height);
    if (i === 0) parts.push(chunk('IDAT', data));
    else {
      const seq = Buffer.alloc(4);
      seq.writeUInt32BE(sequence++, 0);
      parts.push(chunk('fdAT', Buffer.concat([seq, data])));
    }
  });
  parts.push(chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** A PNG's chunks in order, each its type and data (CRCs unread), up to IEND or the end of the bytes. */
export function* pngChunks(png: Buffer): Generator<{ type: string; data: Buffer }> {
  for (let o = 8; o + 8 <= png.length;) {
    const len = png.readUInt32BE(o);
    const type = png.toString('latin1', o + 4, o + 8);
    if (type === 'IEND') return;
    yield { type, data: png.subarray(o + 8, o + 8 + len) };
    o += 12 + len;
  }
}

/** The text chunks of a PNG (tEXt and iTXt). */
export function readPngText(png: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { type, data } of pngChunks(png)) {
    if (type === 'tEXt') {
      const z = data.indexOf(0);
      out[data.toString('latin1', 0, z)] = data.toString('latin1', z + 1);
    } else if (type === 'iTXt') {
      const z = data.indexOf(0);
      let p = z + 3; // compression flag, method
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      out[data.toString('latin1', 0, z)] = data.toString('utf8', p);
    }
  }
  return out;
}

/** Decodes any PNG to RGB bytes (alpha composited on black), or throws a message saying why. */
export function decodePng(png: Buffer): { rgb: Uint8Array; width: number; height: number } {
  const img = PNG.sync.read(png);
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0, j = 0; i < img.data.length; i += 4, j += 3) {
    const a = img.data[i + 3] / 255;
    rgb[j] = Math.round(img.data[i] * a);
    rgb[j + 1] = Math.round(img.data[i + 1] * a);
    rgb[j + 2] = Math.round(img.data[i + 2] * a);
  }
  return { rgb, width: img.width, height: img.height };
}

/** A grid of equally sized RGB images with a gap between them, as one RGB image. */
export function tile(
  images: Uint8Array[],
  size: number,
  columns: number,
  gap = 2,
  background = 255,
): { rgb: Uint8Array; width: number; height: number } {
  const rows = Math.ceil(images.length / columns);
  const width = columns * size + (columns + 1) * gap;
  const height = rows * size + (rows + 1) * gap;
  const rgb = new Uint8Array(width * height * 3).fill(background);
  images.forEach((img, k) => {
    const ox = gap + (k % columns) * (size + gap);
    const oy = gap + Math.floor(k / columns) * (size + gap);
    for (let y = 0; y < size; y++) rgb.set(img.subarray(y * size * 3, (y + 1) * size * 3), ((oy + y) * width + ox) * 3);
  });
  return { rgb, width, height };
}
