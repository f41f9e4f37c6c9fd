/**
 * A thread of the PNG pool (png-pool.ts): encodes the images of each message, or makes an interpolation's animated
 * PNG from its frames' PNGs, and sends the result back.
 */
import { parentPort } from 'node:worker_threads';
import { messageOf } from '../errors.ts';
import { decodePng, encodeApng, encodePng } from './png.ts';

export type PngWork =
  | { op: 'encode'; images: { rgb: Uint8Array; text: Record<string, string> }[]; width: number; height: number }
  /** The frames there and back again (a b c b), one every `delayMs`, looping. */
  | { op: 'animate'; pngs: Uint8Array[]; delayMs: number; text: Record<string, string> };
export type PngRequest = { id: number } & PngWork;

export type PngReply = { id: number; pngs: Uint8Array[] } | { id: number; error: string };

function answer(request: PngRequest): Uint8Array[] {
  if (request.op === 'encode')
    return request.images.map(({ rgb, text }) => encodePng(rgb, request.width, request.height, text));
  const frames = request.pngs.map((p) => decodePng(Buffer.from(p)));
  const { width, height } = frames[0];
  const loop = [...frames, ...frames.slice(1, -1).reverse()].map((f) => f.rgb);
  return [encodeApng(loop, width, height, request.delayMs, request.text)];
}

parentPort?.on('message', (request: PngRequest) => {
  try {
    parentPort!.postMessage({ id: request.id, pngs: answer(request) } satisfies PngReply);
  } catch (err) {
    parentPort!.postMessage({ id: request.id, error: messageOf(err) } satisfies PngReply);
  }
});
