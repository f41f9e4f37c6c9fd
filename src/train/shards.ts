/**
 * Data-parallel training on every core: a step's batch is cut into K shards along the batch axis, the
 * shards are computed on T threads (this one and T - 1 worker threads, each with its own backend and a
 * replica of the model), and their gradients are averaged before one optimizer step here.
 *
 * The result depends on K, never on T: a thread with several shards computes them one after the other,
 * each from the same weights and batch-norm statistics, and every sum runs in shard order. Batch norm sees
 * one shard's statistics (as PyTorch's DistributedDataParallel does without SyncBatchNorm), and the
 * running statistics after a step are the average of what each shard would have left. With K = 1 a step
 * is exactly the single-threaded step.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { Adam } from '../model/adam.ts';
import type { BackendName } from '../model/backends.ts';
import type { ModelConfig } from '../model/config.ts';
import { type Model, type NetworkName, networkParams } from '../model/model.ts';
import {
  type GanBatch,
  type StepOptions,
  type StepKind,
  type StepResult,
  type StyleBatch,
  type TextBatch,
  applyStep,
  discriminatorGrads,
  generatorGrads,
  readNetworks,
  styleGrads,
  textGrads,
  touchedNetworks,
  trainedParams,
} from './steps.ts';

/** A tensor as plain data, so a batch can be cut into shards and sent to another thread. */
export interface HostTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}
export type HostBatch = Record<string, HostTensor | null>;

export const host = (data: Float32Array | Int32Array, shape: number[]): HostTensor => ({ data, shape });

/** Rows [k n / K, (k + 1) n / K) of every field. */
export function shardOf(b: HostBatch, k: number, count: number): HostBatch {
  const out: HostBatch = {};
  for (const [name, t] of Object.entries(b)) {
    if (!t) {
      out[name] = null;
      continue;
    }
    const rows = t.shape[0] / count;
    const width = t.data.length / t.shape[0];
    out[name] = { data: t.data.slice(k * rows * width, (k + 1) * rows * width), shape: [rows, ...t.shape.slice(1)] };
  }
  return out;
}

/**
 * Rows of a text (DS-SJE) batch: one image a class, as many as `batch` and the classes allow, cut down to a multiple
 * of the shards (40 classes in 16 shards: 32).
 */
export function textRows(batch: number, classes: number, count: number): number {
  const rows = Math.floor(Math.min(batch, classes) / count) * count;
  if (rows === 0)
    throw new Error(
      `the text stage takes one image a class: ${classes} classes cannot fill ${count} shards (use at most ${classes})`,
    );
  return rows;
}

/** The batch sizes a step can be cut into `count` equal shards for (every field's rows divide). */
export function checkShardable(batch: number, count: number, halves: boolean): void {
  const rows = halves ? batch / 2 : batch;
  if (!Number.isInteger(rows / count))
    throw new Error(
      `--batch ${batch} cannot be cut into ${count} equal shards${halves ? ' (nor its half, used by interpolation and mode seeking)' : ''}: use a batch that is a multiple of ${halves ? 2 * count : count}`,
    );
}

export function toTensors(b: HostBatch): Record<string, tf.Tensor | null> {
  return Object.fromEntries(
    Object.entries(b).map(([k, t]) => [
      k,
      t ? tf.tensor(t.data, t.shape, t.data instanceof Int32Array ? 'int32' : 'float32') : null,
    ]),
  );
}

/** One shard's step on this thread's model, from host data. */
export function computeStep(model: Model, kind: StepKind, b: HostBatch, o: StepOptions): StepResult {
  const t = toTensors(b);
  try {
    if (kind === 'text') return textGrads(model, t as unknown as TextBatch, o);
    if (kind === 'd') return discriminatorGrads(model, t as unknown as GanBatch, o);
    if (kind === 'g') return generatorGrads(model, t as unknown as GanBatch, o);
    return styleGrads(model, t as unknown as StyleBatch);
  } finally {
    tf.dispose(Object.values(t).filter((x) => x !== null));
  }
}

/** What one shard leaves: gradients in trainedParams order, touched statistics in order, loss terms. */
export interface ShardOutput {
  grads: Float32Array[];
  stats: Float32Array[];
  terms: Record<string, number>;
}

const statsOf = (model: Model, kind: StepKind): tf.Variable[] => {
  const nets = networkParams(model);
  return touchedNetworks(model, kind).flatMap((n) => [...nets.get(n)!.stats.values()]);
};

/** Computes shards one after the other from the same statistics (restored between them). */
export function computeShards(model: Model, kind: StepKind, shards: HostBatch[], o: StepOptions): ShardOutput[] {
  const stats = statsOf(model, kind);
  const start = shards.length > 1 ? stats.map((v) => v.dataSync().slice() as Float32Array) : [];
  return shards.map((b, i) => {
    if (i > 0) tf.tidy(() => stats.forEach((v, k) => v.assign(tf.tensor(start[k], v.shape))));
    const r = computeStep(model, kind, b, o);
    const grads = [...trainedParams(model, kind).keys()].map((n) => r.grads.get(n)!.dataSync() as Float32Array);
    tf.dispose([...r.grads.values()]);
    return { grads, stats: stats.map((v) => v.dataSync().slice() as Float32Array), terms: r.terms };
  });
}

/** Sum in shard order, then / K; identical arrays stay bit for bit (constants, untouched statistics). */
function average(parts: Float32Array[]): Float32Array {
  if (parts.every((p) => p === parts[0] || p.every((x, i) => x === parts[0][i]))) return parts[0];
  const out = parts[0].slice();
  for (const p of parts.slice(1)) for (let i = 0; i < out.length; i++) out[i] += p[i];
  for (let i = 0; i < out.length; i++) out[i] /= parts.length;
  return out;
}

export type ShardRequest =
  | { op: 'weights'; nets: [NetworkName, Float32Array[]][] }
  | { op: 'step'; kind: StepKind; shards: HostBatch[]; options: StepOptions };

interface Thread {
  worker: Worker;
  synced: Map<NetworkName, number>;
  pending: { resolve: (o: ShardOutput[]) => void; reject: (e: Error) => void } | null;
}

export class Shards {
  private readonly version = new Map<NetworkName, number>();

  private constructor(
    private readonly model: Model,
    readonly count: number,
    private readonly threads: Thread[],
  ) {}

  /** `threads` threads in all (this one included) computing `count` shards per step. */
  static async start(model: Model, o: { threads: number; count: number; backend: BackendName }): Promise<Shards> {
    if (!Number.isInteger(o.threads) || o.threads < 1)
      throw new Error(`--threads must be a positive integer, got ${o.threads}`);
    if (!Number.isInteger(o.count) || o.count < 1)
      throw new Error(`--shards must be a positive integer, got ${o.count}`);
    const spawned = Math.min(o.threads, o.count) - 1;
    const entry = require.resolve('./shard-thread.ts');
    const threads = await Promise.all(
      Array.from({ length: spawned }, () =>
        startThread(entry, { config: model.config, withEma: model.ema !== undefined, backend: o.backend }),
      ),
    );
    return new Shards(model, o.count, threads);
  }

  get threadCount(): number {
    return this.threads.length + 1;
  }

  /** Marks a network's weights as changed here (the threads get them before their next step). */
  touch(net: NetworkName): void {
    this.version.set(net, (this.version.get(net) ?? 0) + 1);
  }

  /** One optimizer step of `kind` over the whole batch; returns the loss terms averaged over shards. */
  async step(kind: StepKind, opt: Adam, batch: HostBatch, o: StepOptions): Promise<Record<string, number>> {
    if (this.count === 1) {
      const r = computeStep(this.model, kind, batch, o);
      applyStep(opt, r);
      this.changed(kind);
      return r.terms;
    }
    const shards = Array.from({ length: this.count }, (_, k) => shardOf(batch, k, this.count));
    const mine = (t: number) => shards.filter((_, k) => k % this.threadCount === t);
    // each changed network's weights are read once a step, whatever the number of threads
    const weights = new Map<NetworkName, Float32Array[]>();
    const params = networkParams(this.model);
    const read = (n: NetworkName) =>
      weights.get(n) ??
      weights
        .set(
          n,
          [...params.get(n)!.all().values()].map((v) => v.dataSync() as Float32Array),
        )
        .get(n)!;
    const remote = this.threads.map((thread, i) => this.send(thread, kind, mine(i + 1), o, read));
    const local = computeShards(this.model, kind, mine(0), o);
    const outputs = [local, ...(await Promise.all(remote))];
    const byShard = shards.map((_, k) => outputs[k % this.threadCount][Math.floor(k / this.threadCount)]);

    const names = [...trainedParams(this.model, kind).entries()];
    const grads = new Map(names.map(([n, v], i) => [n, tf.tensor(average(byShard.map((s) => s.grads[i])), v.shape)]));
    applyStep(opt, { loss: 0, terms: {}, grads });
    tf.tidy(() =>
      statsOf(this.model, kind).forEach((v, i) =>
        v.assign(tf.tensor(average(byShard.map((s) => s.stats[i])), v.shape)),
      ),
    );
    this.changed(kind);
    const terms: Record<string, number> = {};
    for (const key of Object.keys(byShard[0].terms))
      terms[key] = byShard.reduce((s, r) => s + r.terms[key], 0) / byShard.length;
    return terms;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  /** The style stage's G is frozen; every other touched network changed (weights or statistics). */
  private changed(kind: StepKind): void {
    for (const net of kind === 'style' ? ['style' as const] : touchedNetworks(this.model, kind)) this.touch(net);
  }

  private send(
    thread: Thread,
    kind: StepKind,
    shards: HostBatch[],
    options: StepOptions,
    read: (n: NetworkName) => Float32Array[],
  ): Promise<ShardOutput[]> {
    const stale = [...touchedNetworks(this.model, kind), ...readNetworks(kind, options)].filter(
      (n) => thread.synced.get(n) !== (this.version.get(n) ?? 0),
    );
    if (stale.length > 0) {
      const nets = stale.map((n) => [n, read(n)] as [NetworkName, Float32Array[]]);
      thread.worker.postMessage({ op: 'weights', nets } satisfies ShardRequest);
      for (const n of stale) thread.synced.set(n, this.version.get(n) ?? 0);
    }
    return new Promise((resolve, reject) => {
      thread.pending = { resolve, reject };
      thread.worker.postMessage({ op: 'step', kind, shards, options } satisfies ShardRequest);
    });
  }
}

function startThread(
  entry: string,
  data: { config: ModelConfig; withEma: boolean; backend: BackendName },
): Promise<Thread> {
  // a .ts entry can't be a Worker's filename; the thread inherits the TypeScript loader via execArgv
  const worker = new Worker(`require(${JSON.stringify(entry)})`, {
    eval: true,
    workerData: data,
    execArgv: process.execArgv,
  });
  const thread: Thread = { worker, synced: new Map(), pending: null };
  const fail = (err: Error) => {
    thread.pending?.reject(err);
    thread.pending = null;
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`training thread exited (code ${code})`)));
  return new Promise((resolve, reject) => {
    worker.once('message', (m: { ready: boolean; error?: string }) => {
      if (!m.ready) return reject(new Error(`training thread failed to start: ${m.error}`));
      worker.on('message', (reply: { ok: true; outputs: ShardOutput[] } | { ok: false; error: string }) => {
        const p = thread.pending;
        thread.pending = null;
        if (reply.ok) p?.resolve(reply.outputs);
        else p?.reject(new Error(`training thread: ${reply.error}`));
      });
      resolve(thread);
    });
  });
}
