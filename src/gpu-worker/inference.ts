/**
 * The job loop's handle on the model: async embed / draw / styleOf on one or more inference threads, each
 * with its own copy of the model. A pass is split evenly between the threads; the rest go to one in turn.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { splitEvenly, startThread } from '../ops/threads.ts';
import type { CheckpointMeta } from '../model/checkpoint-meta.ts';
import { type ModelConfig, latentDim } from '../model/config.ts';
import type { BackendChoice } from '../model/backends.ts';
import type { InferenceReply, InferenceRequest } from './inference-thread.ts';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Distributes a request over the union of its fields except `id`. */
type Without<T, K extends keyof never> = T extends unknown ? Omit<T, K> : never;

/** One inference thread. */
class InferenceThread {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private stopping = false;
  /** Why the thread is gone (it exited or crashed), or null while it runs; every call after that rejects at once. */
  dead: Error | null = null;
  /** Resolves with the reason when the thread dies on its own (not on stop()). */
  readonly died: Promise<Error>;
  private die!: (err: Error) => void;

  private constructor(
    private readonly thread: Worker,
    readonly config: ModelConfig,
    readonly meta: CheckpointMeta,
    readonly backend: string,
    /** Synthesizer.conditioningCentre of the model */
    readonly centre: Float32Array | undefined,
  ) {
    thread.on('message', (m: InferenceReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error));
    });
    this.died = new Promise((resolve) => (this.die = resolve));
    thread.on('error', (err) => this.fail(new Error(`inference thread crashed: ${err.message}`)));
    thread.on('exit', (code) => this.fail(new Error(`inference thread exited (code ${code})`)));
  }

  /** Starts the thread, loads the checkpoint and picks the backend; rejects with the reason it can't. */
  static start(modelDir: string, backend: BackendChoice, log: (line: string) => void): Promise<InferenceThread> {
    const thread = startThread(join(__dirname, 'inference-thread.ts'), { modelDir, backend });
    return new Promise((resolve, reject) => {
      const onMessage = (m: {
        ready: boolean;
        error?: string;
        backend?: string;
        line?: string;
        config?: ModelConfig;
        meta?: CheckpointMeta;
        centre?: Float32Array;
      }) => {
        thread.off('message', onMessage);
        if (!m.ready) {
          void thread.terminate();
          return reject(new Error(m.error));
        }
        log(m.line!);
        resolve(new InferenceThread(thread, m.config!, m.meta!, m.backend!, m.centre));
      };
      thread.on('message', onMessage);
      thread.once('error', reject);
      thread.once('exit', (code) => reject(new Error(`inference thread exited while starting (code ${code})`)));
    });
  }

  private call<T>(req: Without<InferenceRequest, 'id'>): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.thread.postMessage({ ...req, id });
    });
  }

  embed(captions: string[]): Promise<Float32Array[]> {
    return this.call({ op: 'embed', captions });
  }

  draw(items: { z: Float32Array; h: Float32Array }[]): Promise<Uint8Array[]> {
    return this.call({ op: 'draw', items });
  }

  styleOf(images: Uint8Array[]): Promise<Float32Array[]> {
    return this.call({ op: 'styleOf', images });
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    if (!this.stopping) this.die(err);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.thread.terminate();
  }
}

/**
 * Inference threads by default (`backend`: initBackend's name): every core but one (the worker's own) for the
 * JavaScript backends; one for TensorFlow's native ones, on a GPU (threads would share it) or a CPU (TensorFlow
 * spreads a pass over the cores itself).
 */
export const defaultThreads = (backend: string): number =>
  backend === 'wasm' || backend === 'cpu' ? Math.max(1, availableParallelism() - 1) : 1;

export class Inference {
  private turn = 0;
  /** Resolves with the reason when a thread dies on its own (not on stop()): the worker can no longer draw. */
  readonly died: Promise<Error>;

  private constructor(private readonly threads: InferenceThread[]) {
    this.died = Promise.race(threads.map((t) => t.died));
  }

  /**
   * Starts `threads` threads (null: defaultThreads for the backend the first one picked), each loading the
   * checkpoint; rejects with the reason one can't.
   */
  static async start(
    modelDir: string,
    backend: BackendChoice,
    log: (line: string) => void,
    threads: number | null = 1,
  ): Promise<Inference> {
    const first = await InferenceThread.start(modelDir, backend, log);
    const count = threads ?? defaultThreads(first.backend);
    const rest = await Promise.allSettled(
      Array.from({ length: count - 1 }, () => InferenceThread.start(modelDir, backend, () => {})),
    );
    const started = [first, ...rest.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
    const failed = rest.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.all(started.map((t) => t.stop()));
      throw failed.reason;
    }
    return new Inference(started);
  }

  get config(): ModelConfig {
    return this.threads[0].config;
  }
  get meta(): CheckpointMeta {
    return this.threads[0].meta;
  }
  get backend(): string {
    return this.threads[0].backend;
  }
  get centre(): Float32Array | undefined {
    return this.threads[0].centre;
  }
  get threadCount(): number {
    return this.threads.length;
  }
  /** Why a thread is gone, or null while all run; calls after that reject at once. */
  get dead(): Error | null {
    return this.threads.find((t) => t.dead)?.dead ?? null;
  }

  private next(): InferenceThread {
    return this.threads[this.turn++ % this.threads.length];
  }

  embed(captions: string[]): Promise<Float32Array[]> {
    return this.next().embed(captions);
  }

  styleOf(images: Uint8Array[]): Promise<Float32Array[]> {
    return this.next().styleOf(images);
  }

  /** G over the items, split evenly between the threads (G in eval mode: the split changes no pixel). */
  async draw(items: { z: Float32Array; h: Float32Array }[]): Promise<Uint8Array[]> {
    const parts = splitEvenly(items, this.threads.length);
    if (parts.length === 1) return this.next().draw(items);
    return (await Promise.all(parts.map((part, k) => this.threads[k].draw(part)))).flat();
  }

  /**
   * Runs each call once on every thread, and one pass of `maxBatch` images: a thread's first calls cost several
   * times a warm one (its heap grows, its code compiles; 0.8 s for a first pass of 32 images against 0.15 s for a
   * warm 64, docs/benchmarks.md), which a worker pays here rather than in its first users' requests.
   */
  async warmUp(maxBatch: number): Promise<void> {
    const size = this.config.imageSize;
    const z = new Float32Array(latentDim(this.config));
    const hs = await Promise.all(
      this.threads.map(async (t) => {
        const [h] = await t.embed(['a flower with red petals and a yellow centre']);
        await t.styleOf([new Uint8Array(size * size * 3)]);
        await t.draw([{ z, h }]);
        return h;
      }),
    );
    await this.draw(Array.from({ length: maxBatch }, () => ({ z, h: hs[0] })));
  }

  async stop(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.stop()));
  }
}
