/**
 * Style images users upload: base64 PNG or JPEG, checked before anything is decoded (size, signature,
 * dimensions read from the header, so a small file that decodes to a huge bitmap is refused), then decoded
 * by Skia and resized to the model's size.
 */
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { badInput } from '../errors.ts';
import { rgbaToRgb } from '../data/layout.ts';

export const MAX_UPLOAD_BYTES = 700_000;
export const MAX_UPLOAD_SIDE = 2048;

/** Width and height from a PNG's IHDR or a JPEG's SOF marker, or null. */
export function headerSize(b: Buffer): { width: number; height: number; type: 'png' | 'jpeg' } | null {
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.toString('latin1', 12, 16) === 'IHDR') return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), type: 'png' };
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    for (let o = 2; o + 9 < b.length; ) {
      if (b[o] !== 0xff) return null;
      const marker = b[o + 1];
      const len = b.readUInt16BE(o + 2);
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) return { height: b.readUInt16BE(o + 5), width: b.readUInt16BE(o + 7), type: 'jpeg' };
      o += 2 + len;
    }
  }
  return null;
}

/** base64 (or a data: URL) -> RGB bytes of size x size; every problem is BAD_USER_INPUT. */
export async function decodeUpload(data: string, size: number): Promise<Uint8Array> {
  const base64 = data.replace(/^data:image\/(png|jpeg);base64,/, '');
  if (!/^[A-Za-z0-9+/=\s]*$/.test(base64)) throw badInput('image must be base64 (or a data:image/png|jpeg;base64 URL)');
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length === 0) throw badInput('image is empty');
  if (bytes.length > MAX_UPLOAD_BYTES) throw badInput(`image is larger than ${MAX_UPLOAD_BYTES} bytes`);
  const header = headerSize(bytes);
  if (!header) throw badInput('image is not a PNG or JPEG');
  if (header.width < 8 || header.height < 8 || header.width > MAX_UPLOAD_SIDE || header.height > MAX_UPLOAD_SIDE)
    throw badInput(`image must be from 8x8 to ${MAX_UPLOAD_SIDE}x${MAX_UPLOAD_SIDE} pixels, got ${header.width}x${header.height}`);
  let img;
  try {
    img = await loadImage(bytes);
  } catch {
    throw badInput(`image is not a readable ${header.type.toUpperCase()}`);
  }
  if (img.width !== header.width || img.height !== header.height) throw badInput('image header and data disagree');
  const canvas = createCanvas(size, size);
  canvas.getContext('2d').drawImage(img, 0, 0, size, size);
  return rgbaToRgb(canvas.getContext('2d').getImageData(0, 0, size, size).data);
}
