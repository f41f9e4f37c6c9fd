/**
 * PNG encoding on threads of its own: the worker's event loop hands a pass's pixels over and gets its PNGs back,
 * the rows' filtering and their deflate both done there (encodePng). A pass is split evenly between the threads.
 * The API makes interpolations' animated PNGs there too. A thread that dies fails the calls it had and is started
 * again at the next one.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { splitEvenly, startThread } from '../ops/threads.ts';
import type { PngReply, PngRequest, PngWork } from './png-thread.ts';

export type PngImage = Extract<PngWork, { op: 'encode' }>['images'][number];

/** The cores the inference threads leave, 1 to 4 (an image takes about 0.3 ms to encode on this machine's cores). */
export const pngThreads = (inferenceThreads: number): number =>
  Math.max(1, Math.min(4, availableParallelism() - inferenceThreads));

class PngThread {
  private thread: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (pngs: Uint8Array[]) => void; reject: (e: Error) => void }>();

  constructor() {
    this.thread = this.start(); // now, so that the first pass does not wait for it to load
  }

  /** Calls sent and not answered yet. */
  get busy(): number {
    return this.pending.size;
  }

  call(work: PngWork): Promise<Uint8Array[]> {
    const thread = (this.thread ??= this.start());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      thread.postMessage({ ...work, id } satisfies PngRequest);
    });
  }

  private start(): Worker {
    const thread = startThread(join(__dirname, 'png-thread.ts'), null);
    thread.unref(); // an idle encoder keeps no process alive
    thread.on('message', (m: PngReply) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if ('error' in m) p?.reject(new Error(`PNG thread: ${m.error}`));
      else p?.resolve(m.pngs);
    });
    const lost = (why: string) => {
      if (this.thread !== thread) return; // stopped
      this.thread = null;
      for (const p of this.pending.values()) p.reject(new Error(`the PNG thread ${why}`));
      this.pending.clear();
    };
    thread.on('error', (err) => lost(`crashed: ${err.message}`));
    thread.on('exit', (code) => lost(`exited (code ${code})`));
    return thread;
  }

  async stop(): Promise<void> {
    const thread = this.thread;
    this.thread = null;
    for (const p of this.pending.values()) p.reject(new Error('the PNG pool was stopped'));
    this.pending.clear();
    await thread?.terminate();
  }
}

export class PngPool {
  private readonly threads: PngThread[];

  constructor(threads: number) {
    this.threads = Array.from({ length: Math.max(1, threads) }, () => new PngThread());
  }

  /** The images' PNGs, in order. */
  async encode(images: PngImage[], width: number, height: number): Promise<Uint8Array[]> {
    const parts = splitEvenly(images, this.threads.length);
    return (
      await Promise.all(parts.map((part, k) => this.threads[k].call({ op: 'encode', images: part, width, height })))
    ).flat();
  }

  /** The animated PNG of `pngs` (the frames of one size), there and back again, a frame every `delayMs`. */
  async animate(pngs: Uint8Array[], delayMs: number, text: Record<string, string>): Promise<Uint8Array> {
    const thread = this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
    return (await thread.call({ op: 'animate', pngs, delayMs, text }))[0];
  }

  async stop(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.stop()));
  }
}
