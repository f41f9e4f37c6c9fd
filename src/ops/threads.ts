/** Threads that run one of ganvas's TypeScript modules. */
import { Worker } from 'node:worker_threads';

/**
 * A thread running `entry` (an absolute path to a .ts module) with `workerData`: a .ts file can't be a Worker's
 * filename, so the thread requires it, inheriting the TypeScript loader through execArgv.
 */
export const startThread = (entry: string, workerData: unknown): Worker =>
  new Worker(`require(${JSON.stringify(entry)})`, { eval: true, workerData, execArgv: process.execArgv });

/** `items` in at most `n` consecutive parts of one size (the last may be shorter), none empty: a pass over threads. */
export function splitEvenly<T>(items: T[], n: number): T[][] {
  const per = Math.ceil(items.length / n);
  return Array.from({ length: n }, (_, k) => items.slice(k * per, (k + 1) * per)).filter((part) => part.length > 0);
}
