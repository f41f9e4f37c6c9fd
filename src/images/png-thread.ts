/** A thread of the PNG pool (png-pool.ts): encodes the images of each message and sends their PNGs back. */
import { parentPort } from 'node:worker_threads';
import { messageOf } from '../errors.ts';
import { encodePng } from './png.ts';

export interface PngRequest {
  id: number;
  images: { rgb: Uint8Array; text: Record<string, string> }[];
  width: number;
  height: number;
}

export type PngReply = { id: number; pngs: Uint8Array[] } | { id: number; error: string };

parentPort?.on('message', ({ id, images, width, height }: PngRequest) => {
  try {
    const pngs = images.map(({ rgb, text }) => encodePng(rgb, width, height, text));
    parentPort!.postMessage({ id, pngs } satisfies PngReply);
  } catch (err) {
    parentPort!.postMessage({ id, error: messageOf(err) } satisfies PngReply);
  }
});
