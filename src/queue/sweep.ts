/**
 * The sweep that ends jobs which used every attempt (queue.ts failExhausted: they appear as leases lapse, and a claim
 * never takes one), on a timer of its own, one run at a time.
 */
import type { Database } from '../db/database.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';
import { repeat } from '../ops/repeat.ts';
import { failExhausted } from './queue.ts';

/**
 * How often: a worker's every second, beside its claims (a claim does not wait for it); an API process's every 5 s,
 * as there may be no worker (scaled to zero, as the KEDA trigger allows once such a job's lease lapses).
 */
export const EXHAUSTED_SWEEP_MS = { worker: 1_000, api: 5_000 };

export function sweepExhausted(
  db: Database,
  metrics: Metrics,
  log: Logger,
  everyMs: number,
): { stop(): Promise<void> } {
  let failing = false; // warned once an outage, not every sweep
  return repeat(everyMs, () =>
    failExhausted(db.prisma).then(
      (failed) => {
        failing = false;
        metrics.generationsFinished.inc({ status: 'FAILED' }, failed.length);
      },
      (err: unknown) => {
        if (!failing) log.warn({ err }, 'ending jobs that used their attempts failed (database unreachable?)');
        failing = true;
      },
    ),
  );
}
