/** PNG text metadata in any script, animated PNGs, the float16 codec of checkpoints, and resizing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { createCanvas } from '@napi-rs/canvas';
import { chunk, decodePng, encodeApng, encodePng, readPngText, tile } from '../src/images/png.ts';
import { ByteCache } from '../src/images/byte-cache.ts';
import { PngPool } from '../src/images/png-pool.ts';
import { resizeRgb } from '../src/images/resize.ts';
import { decodeUpload, headerSize, isComplete } from '../src/images/upload.ts';
import { fromHalf, toHalf } from '../src/model/tensor-file.ts';

const gradient = (w: number, h: number) => Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7) % 256);

test('PNGs round-trip pixels and text chunks, Latin-1 and any other script', async () => {
  const rgb = gradient(5, 3);
  const text = {
    caption: 'a flower with five petals',
    seed: '-12',
    model: 'default',
    kind: 'TEXT_TO_IMAGE',
    note: 'ein Blümchen 🌸 花',
  };
  const png = encodePng(rgb, 5, 3, text);
  assert.deepEqual(readPngText(png), text);
  const decoded = decodePng(png);
  assert.deepEqual([decoded.width, decoded.height], [5, 3]);
  assert.deepEqual(decoded.rgb, rgb);
  assert.deepEqual(PNG.sync.read(png).width, 5); // an independent decoder agrees
  const pool = new PngPool(2);
  try {
    const other = gradient(5, 3).map((v) => 255 - v);
    const pngs = await pool.encode(
      [
        { rgb, text },
        { rgb: other, text: {} },
        { rgb, text: { caption: 'x' } },
      ],
      5,
      3,
    );
    // off the event loop, split between the threads, in order: the same bytes as encodePng
    assert.deepEqual(
      pngs.map((p) => Buffer.from(p)),
      [png, encodePng(other, 5, 3), encodePng(rgb, 5, 3, { caption: 'x' })],
    );
  } finally {
    await pool.stop();
  }
});

test("PNG rows are Paeth-filtered: a smooth picture's PNG is well under its unfiltered rows deflated; noise round-trips exactly", () => {
  const [w, h] = [64, 64];
  const smooth = Uint8Array.from({ length: w * h * 3 }, (_, i) => {
    const [x, y, c] = [Math.floor(i / 3) % w, Math.floor(i / 3 / w), i % 3];
    return Math.round(127.5 + 100 * Math.sin((x * (c + 1)) / 20 + (y * y) / 400));
  });
  const png = encodePng(smooth, w, h);
  assert.deepEqual(decodePng(png).rgb, smooth);
  const rows = Buffer.concat(
    Array.from({ length: h }, (_, y) => Buffer.from([0, ...smooth.subarray(y * w * 3, (y + 1) * w * 3)])),
  );
  const unfiltered = deflateSync(rows).length;
  assert.ok(png.length < 0.7 * unfiltered, `${png.length} bytes against ${unfiltered} unfiltered`);
  let seed = 1;
  const noise = Uint8Array.from({ length: w * h * 3 }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  assert.deepEqual(decodePng(encodePng(noise, w, h)).rgb, noise); // every residual wraps modulo 256 somewhere
});

test('an animated PNG holds every frame; viewers without APNG see the first', () => {
  const frames = [gradient(4, 4), gradient(4, 4).map((v) => 255 - v), gradient(4, 4).fill(9)];
  const apng = encodeApng(frames, 4, 4, 100);
  const acTL = apng.indexOf('acTL');
  assert.equal(apng.readUInt32BE(acTL + 4), 3);
  assert.equal(apng.toString('latin1').split('fcTL').length - 1, 3);
  assert.equal(apng.toString('latin1').split('fdAT').length - 1, 2);
  assert.deepEqual(decodePng(apng).rgb, frames[0]);
});

test('float16 encodes exactly what float16 can hold and rounds the rest to nearest', () => {
  for (const v of [0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 0.0999755859375])
    assert.equal(fromHalf(toHalf(v)), v);
  assert.equal(fromHalf(toHalf(1e6)), Infinity);
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
  assert.equal(fromHalf(toHalf(2 ** -26)), 0);
  for (const v of [0.1, 3.14159, -0.02, 1234.5678])
    assert.ok(Math.abs(fromHalf(toHalf(v)) - v) <= Math.abs(v) * 2 ** -11);
});

test('tiling and resizing keep pixels where they belong', () => {
  const red = new Uint8Array(2 * 2 * 3).fill(0).map((_, i) => (i % 3 === 0 ? 255 : 0));
  const sheet = tile([red, red, red], 2, 2, 1, 0);
  assert.deepEqual([sheet.width, sheet.height], [2 * 2 + 3, 2 * 2 + 3]);
  assert.deepEqual(
    Array.from(sheet.rgb.subarray((1 * sheet.width + 1) * 3, (1 * sheet.width + 1) * 3 + 3)),
    [255, 0, 0],
  );
  assert.deepEqual(Array.from(sheet.rgb.subarray(0, 3)), [0, 0, 0]); // the gap
  const flat = new Uint8Array(6 * 6 * 3).fill(77);
  assert.ok(resizeRgb(flat, 6, 6, 4).every((v) => v === 77));
});

test('JPEG size is read as decoders read it: fill bytes skipped, a frame header hidden in an APP segment ignored', async () => {
  // the review's bomb: fill bytes before APP1, whose payload hides an 8x8 frame header exactly where a walker
  // that took the second 0xFF for a marker would land; the real frame header says 4000x4000
  const app = 0xfff0;
  const sof = (w: number, h: number) =>
    Buffer.from([0xff, 0xc0, 0x00, 0x0b, 0x08, h >> 8, h & 0xff, w >> 8, w & 0xff, 0x01, 0x01, 0x11, 0x00]);
  const bomb = Buffer.alloc(2 + 2 + 3 + (app - 2) + 13 + 64, 0x11);
  Buffer.from([0xff, 0xd8, 0xff, 0xff, 0xe1, app >> 8, app & 0xff]).copy(bomb, 0);
  const naiveLanding = 2 + 2 + ((0xe1 << 8) | (app >> 8));
  sof(8, 8).copy(bomb, naiveLanding);
  sof(4000, 4000).copy(bomb, 2 + 2 + 1 + app);
  assert.deepEqual(headerSize(bomb), { width: 4000, height: 4000, type: 'jpeg' });
  await assert.rejects(
    decodeUpload(bomb.toString('base64'), 32),
    (e: Error & { code?: string }) => e.code === 'BAD_USER_INPUT' && e.message.includes('4000x4000'),
  );
  // no frame header before the scan: not an image
  assert.equal(headerSize(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08, 1, 2, 3, 4, 5, 6])), null);
  assert.equal(headerSize(Buffer.from([0xff, 0xd8, 0xff, 0xff, 0xff])), null);
});

test('an upload cut short is BAD_USER_INPUT, not drawn from the part that decodes', async () => {
  const canvas = createCanvas(40, 30);
  const c = canvas.getContext('2d');
  for (let x = 0; x < 40; x += 4) {
    c.fillStyle = x % 8 ? '#f00' : '#00f';
    c.fillRect(x, 0, 4, 30);
  }
  for (const type of ['png', 'jpeg'] as const) {
    const file = type === 'png' ? canvas.toBuffer('image/png') : canvas.toBuffer('image/jpeg');
    assert.ok(isComplete(file, type), `a whole ${type}`);
    assert.equal((await decodeUpload(file.toString('base64'), 8)).length, 8 * 8 * 3);
    // trailing bytes after the end (some cameras append data) are no reason to refuse
    assert.ok(isComplete(Buffer.concat([file, Buffer.alloc(100, 7)]), type));
    for (const cut of [Math.floor(file.length * 0.8), file.length - 2]) {
      const part = file.subarray(0, cut);
      assert.ok(!isComplete(part, type), `${type} cut at ${cut} of ${file.length}`);
      await assert.rejects(
        decodeUpload(part.toString('base64'), 8),
        (e: Error & { code?: string }) => e.code === 'BAD_USER_INPUT' && /cut short/.test(e.message),
      );
    }
  }
});

test("a PNG whose pixel data is damaged, or another size than its header's, is BAD_USER_INPUT; every kind of whole PNG is read", async () => {
  /** A PNG of `width` x `height` whose IDAT is `raw` (filtered rows) deflated, with every CRC right. */
  const png = (width: number, height: number, colour: number, depth: number, interlace: number, raw: Buffer) => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr.set([depth, colour, 0, 0, interlace], 8);
    const palette = colour === 3 ? [chunk('PLTE', Buffer.from([255, 0, 0, 0, 0, 255]))] : [];
    return Buffer.concat([
      Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
      chunk('IHDR', ihdr),
      ...palette,
      chunk('IDAT', deflateSync(raw)),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  };
  /** `rows` rows of `bytes` bytes each, filter 0, every byte `v`. */
  const rows = (n: number, bytes: number, v = 1) =>
    Buffer.concat(Array.from({ length: n }, () => Buffer.from([0, ...Array<number>(bytes).fill(v)])));
  const readable = async (file: Buffer) => (await decodeUpload(file.toString('base64'), 8)).length === 8 * 8 * 3;
  const refused = (file: Buffer) =>
    assert.rejects(
      decodeUpload(file.toString('base64'), 8),
      (e: Error & { code?: string }) => e.code === 'BAD_USER_INPUT' && /not a readable PNG/.test(e.message),
    );
  // whole: RGB, grey, grey + alpha, RGBA of 16 bits, a palette of 1 bit, and Adam7 interlaced (the rows of its seven
  // passes, [rows, pixels a row] each, of a 16 x 16 RGB image)
  assert.ok(await readable(png(16, 12, 2, 8, 0, rows(12, 48))));
  assert.ok(await readable(png(16, 12, 0, 8, 0, rows(12, 16))));
  assert.ok(await readable(png(16, 12, 4, 8, 0, rows(12, 32))));
  assert.ok(await readable(png(16, 12, 6, 16, 0, rows(12, 128))));
  assert.ok(await readable(png(16, 12, 3, 1, 0, rows(12, 2, 0x5a))));
  const adam7 = [
    [2, 2],
    [2, 2],
    [2, 4],
    [4, 4],
    [4, 8],
    [8, 8],
    [8, 16],
  ].map(([h, w]) => rows(h, 3 * w));
  assert.ok(await readable(png(16, 16, 2, 8, 1, Buffer.concat(adam7))));
  // damaged: a third of its rows gone, CRCs and IEND intact (Skia drew the rest black); more rows than its header
  // says (a 64 x 64 image in a 100 x 100 header's place, or the other way round); its zlib stream scrambled
  await refused(png(16, 12, 2, 8, 0, rows(8, 48)));
  await refused(png(16, 12, 2, 8, 0, rows(16, 48)));
  await refused(png(100, 100, 2, 8, 0, rows(64, 64 * 3)));
  const scrambled = png(16, 12, 2, 8, 0, rows(12, 48));
  scrambled.fill(0x55, 8 + 25 + 8 + 2, 8 + 25 + 8 + 12); // inside the IDAT's deflate stream, after its zlib header
  await refused(scrambled);
});

test("an upload's transparent parts are read as white; a data: URL of image/jpg or in capitals is taken, of another type named", async () => {
  const canvas = createCanvas(16, 16);
  const c = canvas.getContext('2d');
  c.fillStyle = '#f00';
  c.fillRect(0, 0, 8, 16); // the right half left transparent
  const png = canvas.toBuffer('image/png').toString('base64');
  const rgb = await decodeUpload(png, 8);
  assert.deepEqual([...rgb.subarray(0, 3)], [255, 0, 0]);
  assert.deepEqual([...rgb.subarray(7 * 3, 8 * 3)], [255, 255, 255], 'transparent: white, not black');
  const jpeg = canvas.toBuffer('image/jpeg').toString('base64');
  for (const url of [
    `data:image/jpg;base64,${jpeg}`,
    `data:IMAGE/JPEG;base64,${jpeg}`,
    `data:image/PNG;base64,${png}`,
    `data:image/png;name=flower.png;base64,${png}`,
  ])
    assert.equal((await decodeUpload(url, 8)).length, 8 * 8 * 3, url.slice(0, 20));
  await assert.rejects(
    decodeUpload(`data:image/webp;base64,${png}`, 8),
    (e: Error & { code?: string }) =>
      e.code === 'BAD_USER_INPUT' && /PNG or JPEG in base64, got a data: URL of image\/webp$/.test(e.message),
  );
  await assert.rejects(
    decodeUpload(`data:image/png,${png}`, 8),
    (e: Error & { code?: string }) => e.code === 'BAD_USER_INPUT' && /of image\/png without ;base64$/.test(e.message),
  );
});

test('a phone photo turned by its EXIF orientation is read upright, not refused', async () => {
  // 40x30: red left half, blue right half; orientation 6 (turn 90 degrees clockwise): red on top, blue below
  const canvas = createCanvas(40, 30);
  const c = canvas.getContext('2d');
  c.fillStyle = '#f00';
  c.fillRect(0, 0, 20, 30);
  c.fillStyle = '#00f';
  c.fillRect(20, 0, 20, 30);
  const jpeg = canvas.toBuffer('image/jpeg');
  const tiff = [0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0];
  const exif = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), Buffer.from(tiff)]);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, exif.length + 2]), exif]);
  const photo = Buffer.concat([jpeg.subarray(0, 2), app1, jpeg.subarray(2)]);
  const rgb = await decodeUpload(photo.toString('base64'), 8);
  const at = (x: number, y: number) => [...rgb.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3)];
  assert.ok(at(4, 0)[0] > 200 && at(4, 0)[2] < 60, `top is red: ${at(4, 0)}`);
  assert.ok(at(4, 7)[2] > 200 && at(4, 7)[0] < 60, `bottom is blue: ${at(4, 7)}`);
});

test('an uploaded style image that is not square is cropped to its centre, not squashed', async () => {
  // 40x20 (and 20x40): red, then the green centre square, then blue
  const stripes = (w: number, h: number) =>
    Uint8Array.from({ length: w * h * 3 }, (_, i) => {
      const p = Math.floor(i / 3);
      const along = w > h ? p % w : Math.floor(p / w);
      const band = along < 10 ? 0 : along < 30 ? 1 : 2;
      return i % 3 === band ? 255 : 0;
    });
  for (const [w, h] of [
    [40, 20],
    [20, 40],
  ]) {
    const rgb = await decodeUpload(encodePng(stripes(w, h), w, h).toString('base64'), 8);
    for (let p = 0; p < 64; p++)
      assert.deepEqual([...rgb.subarray(p * 3, p * 3 + 3)], [0, 255, 0], `${w}x${h}: pixel ${p} is the centre's`);
  }
});

test('the byte cache keeps the most recently used within its bound and nothing larger than it', () => {
  const cache = new ByteCache(10);
  const b = (n: number) => new Uint8Array(n);
  cache.set('a', b(4));
  cache.set('b', b(4));
  assert.ok(cache.get('a')); // a is now the most recent
  cache.set('c', b(4)); // 12 > 10: b, the least recent, goes
  assert.equal(cache.get('b'), undefined);
  assert.ok(cache.get('a') && cache.get('c'));
  assert.equal(cache.bytes, 8);
  cache.set('a', b(2)); // replaced, not added
  assert.equal(cache.bytes, 6);
  cache.set('huge', b(11));
  assert.equal(cache.get('huge'), undefined);
  assert.equal(cache.bytes, 6);
});
