/** Threads that run one of ganvas's TypeScript modules. */
import { Worker } from 'node:worker_threads';

/**
 * A thread running `entry` (an absolute path to a .ts module) with `workerData`: a .ts file can't be a Worker's
 * filename, so the thread requires it, inheriting the TypeScript loader through execArgv.
 */
export const startThread = (entry: string, workerData: unknown): Worker =>
  new Worker(`require(${JSON.stringify(entry)})`, { eval: true, workerData, execArgv: process.execArgv });
