/**
 * Reading and writing captioned image data sets. Two layouts are read:
 *  - Reed's CUB-200 / Oxford-102 layout: text_c10/<class>/<image>.txt (one caption a line), the image in
 *    images/<class>/<image>.(jpg|png) or jpg/<image>.jpg, and trainvalclasses.txt / testclasses.txt;
 *  - a manifest: manifest.jsonl, one {"image": path, "captions": [...], "class"?: name} per line.
 * ganvas's procedural set is written in Reed's layout, with styles.jsonl and species.json beside it.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { messageOf } from '../errors.ts';
import { rgbaToRgb } from '../images/rgb.ts';

export interface Sample {
  /** "<class>/<image>" */
  key: string;
  classId: string;
  imagePath: string;
  captions: string[];
}

export interface DatasetIndex {
  root: string;
  samples: Sample[];
  trainClasses: string[];
  testClasses: string[];
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function readLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

async function findImage(root: string, classId: string, name: string): Promise<string> {
  const candidates = ['jpg', 'png', 'jpeg'].flatMap((ext) => [
    join(root, 'images', classId, `${name}.${ext}`),
    join(root, 'jpg', `${name}.${ext}`),
    join(root, 'images', `${name}.${ext}`),
  ]);
  for (const c of candidates) if (await exists(c)) return c;
  throw new Error(
    `missing image for ${join(root, 'text_c10', classId, `${name}.txt`)} (looked for ${candidates.slice(0, 3).join(', ')}, ...)`,
  );
}

async function indexReed(root: string): Promise<DatasetIndex> {
  const textRoot = join(root, 'text_c10');
  const classes = (await readdir(textRoot, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const samples: Sample[] = [];
  for (const classId of classes) {
    const files = (await readdir(join(textRoot, classId))).filter((f) => f.endsWith('.txt')).sort();
    for (const f of files) {
      const name = f.slice(0, -4);
      const captions = await readLines(join(textRoot, classId, f));
      if (captions.length === 0) throw new Error(`no captions in ${join(textRoot, classId, f)}`);
      samples.push({ key: `${classId}/${name}`, classId, imagePath: await findImage(root, classId, name), captions });
    }
  }
  const listed = async (names: string[]) => {
    for (const n of names) if (await exists(join(root, n))) return readLines(join(root, n));
    return null;
  };
  const train = (await listed(['trainvalclasses.txt', 'trainclasses.txt'])) ?? classes;
  const test = (await listed(['testclasses.txt'])) ?? [];
  return { root, samples, trainClasses: train, testClasses: test };
}

async function indexManifest(root: string, path: string): Promise<DatasetIndex> {
  const lines = (await readFile(path, 'utf8')).split('\n');
  const samples: Sample[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${path}:${i + 1}`;
    let entry: { image?: unknown; captions?: unknown; class?: unknown };
    try {
      entry = JSON.parse(line);
    } catch {
      throw new Error(`${where}: not valid JSON`);
    }
    if (typeof entry.image !== 'string') throw new Error(`${where}: "image" must be a path`);
    const captions = Array.isArray(entry.captions)
      ? entry.captions.filter((c): c is string => typeof c === 'string' && c.trim() !== '')
      : [];
    if (captions.length === 0) throw new Error(`${where}: no captions for ${entry.image}`);
    const classId = typeof entry.class === 'string' ? entry.class : entry.image;
    samples.push({ key: `${classId}/${i}`, classId, imagePath: resolve(root, entry.image), captions });
  });
  for (const s of samples) if (!(await exists(s.imagePath))) throw new Error(`${path}: missing image ${s.imagePath}`);
  const classes = [...new Set(samples.map((s) => s.classId))];
  return { root, samples, trainClasses: classes, testClasses: [] };
}

/** Indexes a data set folder in either layout; every problem is reported with the file it is in. */
export async function indexDataset(dir: string): Promise<DatasetIndex> {
  const root = resolve(dir);
  if (await exists(join(root, 'text_c10'))) return indexReed(root);
  if (await exists(join(root, 'manifest.jsonl'))) return indexManifest(root, join(root, 'manifest.jsonl'));
  throw new Error(`${root} is not a data set: expected text_c10/ (Reed's layout) or manifest.jsonl`);
}

/** Decodes an image file and resizes it to size x size RGB bytes. */
export async function loadRgb(path: string, size: number): Promise<Uint8Array> {
  let img;
  try {
    img = await loadImage(await readFile(path));
  } catch (err) {
    throw new Error(`unreadable image ${path}: ${messageOf(err)}`, { cause: err });
  }
  if (!img.width || !img.height) throw new Error(`unreadable image ${path}`);
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0, size, size);
  return rgbaToRgb(ctx.getImageData(0, 0, size, size).data);
}
