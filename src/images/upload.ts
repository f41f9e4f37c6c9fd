/**
 * Style images users upload: base64 PNG or JPEG, checked before anything is decoded (size, signature,
 * dimensions read from the header, so a small file that decodes to a huge bitmap is refused), a PNG's pixel data
 * checked whole, then decoded by Skia and resized to the model's size.
 */
import { createHash } from 'node:crypto';
import { createInflate } from 'node:zlib';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { badInput } from '../errors.ts';
import { pngChunks } from './png.ts';
import { rgbaToRgb } from './rgb.ts';

/** BAD_USER_INPUT about the uploaded style image (the input field `image`). */
const badImage = (message: string) => badInput(message, 'image');

export const MAX_UPLOAD_BYTES = 700_000;
export const MAX_UPLOAD_SIDE = 2048;

/** JPEG markers that stand alone (no length) and may come before the frame header: TEM, RST0-7. */
const STANDALONE = new Set([0x01, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7]);
/** Start-of-frame markers (C0-CF but DHT C4, JPG C8, DAC CC): they carry the image's size. */
const isFrame = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * A JPEG's segments in order (each marker and the offset of its length field), walked as ITU T.81 B.1.1 has it, as
 * decoders do: any number of 0xFF fill bytes may precede a marker and each segment is skipped by its length (so a
 * header hidden inside an APP segment is never read). It ends at the first scan (SOS, yielded) or at anything a
 * decoder would not take.
 */
function* jpegSegments(b: Buffer): Generator<{ marker: number; at: number }> {
  let o = 2;
  while (o < b.length) {
    if (b[o] !== 0xff) return; // junk between segments: not a JPEG a decoder would take as this one
    while (o < b.length && b[o] === 0xff) o++; // fill bytes
    if (o >= b.length) return;
    const marker = b[o++];
    if (STANDALONE.has(marker)) continue;
    if (marker === 0x00 || marker === 0xd8 || marker === 0xd9 || o + 2 > b.length) return;
    yield { marker, at: o };
    const len = b.readUInt16BE(o);
    if (marker === 0xda || len < 2) return;
    o += len;
  }
}

/**
 * Width and height from a PNG's IHDR or a JPEG's frame header, or null: the first frame header before the scan,
 * the one a decoder uses.
 */
export function headerSize(b: Buffer): { width: number; height: number; type: 'png' | 'jpeg' } | null {
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.toString('latin1', 12, 16) === 'IHDR')
    return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), type: 'png' };
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  for (const { marker, at } of jpegSegments(b)) {
    if (marker === 0xda) return null; // no frame header before the scan
    const len = b.readUInt16BE(at);
    if (isFrame(marker))
      return len >= 7 && at + 7 <= b.length
        ? { height: b.readUInt16BE(at + 3), width: b.readUInt16BE(at + 5), type: 'jpeg' }
        : null;
  }
  return null;
}

const IEND = Buffer.from('IEND', 'latin1');
const EOI = Buffer.from([0xff, 0xd9]);

/**
 * Whether a file runs to its end: a PNG's IEND chunk (with its CRC), a JPEG's end-of-image marker after its first
 * scan (an embedded thumbnail's comes before it). Skia decodes a file cut short (a base64 string truncated on its
 * way) to part of a picture without a word, and the request would draw from it.
 */
export function isComplete(b: Buffer, type: 'png' | 'jpeg'): boolean {
  if (type === 'png') {
    const end = b.indexOf(IEND, 33);
    return end !== -1 && end + 8 <= b.length; // the chunk's type and its CRC
  }
  const scan = [...jpegSegments(b)].find((s) => s.marker === 0xda);
  return scan !== undefined && b.lastIndexOf(EOI) > scan.at;
}

/** How many bytes `data` inflates to, null when it is damaged or more than `most` (counted, not kept). */
const inflatedLength = (data: Buffer, most: number): Promise<number | null> =>
  new Promise((resolve) => {
    const z = createInflate();
    let length = 0;
    z.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > most) {
        z.destroy();
        resolve(null);
      }
    });
    z.on('end', () => resolve(length));
    z.on('error', () => resolve(null));
    z.end(data);
  });
/** Samples a pixel has, by PNG colour type: greyscale, RGB, palette (an index), grey + alpha, RGBA. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7's seven passes: the first column and row of each, and its steps across and down. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/**
 * Whether a PNG's pixel data is all there: its IDAT chunks inflate to exactly the filtered rows its header promises.
 * Skia draws a file whose data ends early, is damaged, or is another size than its header says, without a word (the
 * rows it lacks black), and the request would draw from that. Inflated off the event loop and counted, not kept, and
 * never past the size promised.
 */
async function pngDataIsWhole(b: Buffer): Promise<boolean> {
  const [width, height, depth, colour, interlace] = [b.readUInt32BE(16), b.readUInt32BE(20), b[24], b[25], b[28]];
  const channels = CHANNELS[colour];
  if (!channels || interlace > 1) return false;
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * channels * depth) / 8)) : 0);
  const expected =
    interlace === 0
      ? rows(width, height)
      : ADAM7.reduce((n, [x, y, dx, dy]) => n + rows(Math.ceil((width - x) / dx), Math.ceil((height - y) / dy)), 0);
  const data = [...pngChunks(b)].flatMap((c) => (c.type === 'IDAT' ? [c.data] : []));
  return (await inflatedLength(Buffer.concat(data), expected)) === expected; // not damaged, cut short, or more
}

/** A data: URL's head as browsers write it for a PNG or JPEG (image/jpg too, in any case, parameters allowed). */
const DATA_URL = /^data:image\/(png|jpe?g)(;[^;,]*)*;base64,/i;

/** The file an upload carries: base64 (or a data: URL) -> bytes; BAD_USER_INPUT if it carries none. */
function uploadBytes(data: string): Buffer {
  const other = DATA_URL.test(data) ? null : /^data:([^;,]*)/i.exec(data);
  if (other)
    throw badImage(
      `image must be a PNG or JPEG in base64, got a data: URL of ${other[1] || 'no media type'}` +
        (/;base64,/i.test(data) ? '' : ' without ;base64'),
    );
  const base64 = data.replace(DATA_URL, '');
  if (!/^[A-Za-z0-9+/=\s]*$/.test(base64)) throw badImage('image must be base64 (or a data:image/png|jpeg;base64 URL)');
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length === 0) throw badImage('image is empty');
  if (bytes.length > MAX_UPLOAD_BYTES) throw badImage(`image is larger than ${MAX_UPLOAD_BYTES} bytes`);
  return bytes;
}

/** SHA-256 of the file an upload carries (hex): the same for the same file however it was wrapped. */
export const uploadDigest = (data: string): string => createHash('sha256').update(uploadBytes(data)).digest('hex');

/** base64 (or a data: URL) -> RGB bytes of size x size; every problem is BAD_USER_INPUT. */
export async function decodeUpload(data: string, size: number): Promise<Uint8Array> {
  const bytes = uploadBytes(data);
  const header = headerSize(bytes);
  if (!header) throw badImage('image is not a PNG or JPEG');
  if (header.width < 8 || header.height < 8 || header.width > MAX_UPLOAD_SIDE || header.height > MAX_UPLOAD_SIDE)
    throw badImage(
      `image must be from 8x8 to ${MAX_UPLOAD_SIDE}x${MAX_UPLOAD_SIDE} pixels, got ${header.width}x${header.height}`,
    );
  if (!isComplete(bytes, header.type))
    throw badImage(`image is a ${header.type.toUpperCase()} cut short (no end of file): was its base64 truncated?`);
  if (header.type === 'png' && !(await pngDataIsWhole(bytes)))
    throw badImage("image is not a readable PNG: its pixel data is damaged, or another size than its header's");
  let img;
  try {
    img = await loadImage(bytes);
  } catch {
    throw badImage(`image is not a readable ${header.type.toUpperCase()}`);
  }
  // turned a quarter by its EXIF orientation (5-8: a phone photo held upright), which the decoder applies
  const turned = img.width === header.height && img.height === header.width;
  if (!turned && (img.width !== header.width || img.height !== header.height))
    throw badImage('image header and data disagree');
  // the largest centred square, scaled to the model's size: a portrait or landscape photo is cropped, not squashed;
  // on white, as viewers show a transparent image (dropping alpha would read its transparent parts as black)
  const side = Math.min(img.width, img.height);
  const ctx = createCanvas(size, size).getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, size, size);
  ctx.drawImage(img, (img.width - side) / 2, (img.height - side) / 2, side, side, 0, 0, size, size);
  return rgbaToRgb(ctx.getImageData(0, 0, size, size).data);
}
