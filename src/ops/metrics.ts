/**
 * Prometheus metrics (prom-client) of one process: what the API and the worker measure, and the queue
 * read from Postgres at each scrape. One registry per process role set (the embedded `npm start` puts
 * the API's and the worker's on the same /metrics). docs/operations.md says what to alert on.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../db/database.ts';

const MAX_OPERATIONS = 200;
/** How long a scrape waits for the queue's read (the probes' own checks wait 2 s). */
const QUEUE_READ_MS = 1500;

/** The roles a process runs: its /metrics shows their metrics alone (docs/operations.md says whose each is). */
export interface MetricRoles {
  api: boolean;
  worker: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  readonly operationSeconds = new Histogram({
    name: 'ganvas_graphql_operation_seconds',
    help: 'GraphQL operations by name and type, from the request to the response (subscriptions: their lifetime)',
    labelNames: ['operation', 'type', 'transport'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600],
    registers: [this.registry],
  });
  readonly subscriptionsOpen = new Gauge({
    name: 'ganvas_subscriptions_open',
    help: 'graphql-ws operations running now (subscriptions)',
    registers: [this.registry],
  });
  readonly socketsOpen = new Gauge({
    name: 'ganvas_websockets_open',
    help: 'authenticated WebSocket connections',
    registers: [this.registry],
  });
  readonly generationsFinished = new Counter({
    name: 'ganvas_generations_finished_total',
    help: 'generations that ended, by status (SUCCEEDED and FAILED counted by workers, CANCELED and jobs that used their attempts FAILED by APIs too; not those a key revocation canceled)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly images = new Counter({
    name: 'ganvas_images_total',
    help: 'images drawn and stored',
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'ganvas_inference_batch_seconds',
    help: 'one forward pass of G over a batch of images',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly batchImages = new Histogram({
    name: 'ganvas_inference_batch_images',
    help: 'images in one forward pass',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly webhookAttempts = new Counter({
    name: 'ganvas_webhook_attempts_total',
    help: 'webhook messages sent, by result: delivered, retry (to be sent again), gave_up (FAILED)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly pagesAnswered = new Counter({
    name: 'ganvas_generation_pages_total',
    help: "pages of generations answered, by where from: kept (this instance's, nothing of their owner's changed since) or read (from the database)",
    labelNames: ['from'] as const,
    registers: [this.registry],
  });

  /** Operation names seen so far: clients choose them, so only the first MAX_OPERATIONS get their own series. */
  private readonly operations = new Set<string>();

  constructor(roles: MetricRoles = { api: true, worker: true }) {
    collectDefaultMetrics({ register: this.registry });
    // the other role's metrics still count (nothing reads them), off this process's /metrics: a worker's scrape
    // with an API's series of zeros would read as an API, and an API's as a worker that draws nothing
    const others = [
      ...(roles.api
        ? []
        : [this.operationSeconds, this.subscriptionsOpen, this.socketsOpen, this.webhookAttempts, this.pagesAnswered]),
      ...(roles.worker ? [] : [this.images, this.batchSeconds, this.batchImages]),
    ];
    for (const m of others) this.registry.removeSingleMetric((m as unknown as { name: string }).name);
  }

  /** The label of a client's operation name: itself while it is well-formed and few are known, else "other". */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (this.operations.has(name)) return name;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name) || this.operations.size >= MAX_OPERATIONS) return 'other';
    this.operations.add(name);
    return name;
  }

  /** The queue, read from the Job table at each scrape: work waiting and running, and the oldest wait. */
  watchQueue(db: Database): void {
    type Row = { status: string; jobs: number; images: number; oldest: number | null };
    // one query serves the gauges that a scrape collects together
    let rows: Promise<Row[] | null> | null = null;
    // null when the database does not answer in time: the gauges keep their last values and the scrape (the
    // process's own metrics with it) still answers, instead of failing whole or hanging with the database
    const read = (): Promise<Row[] | null> => {
      if (!rows) {
        const query = db.query<Row>(
          `SELECT g."status"::text AS status, count(*)::int AS jobs, coalesce(sum(g."imageCount"), 0)::int AS images,
                  extract(epoch FROM now() - min(g."createdAt"))::float8 AS oldest
             FROM "Job" j JOIN "Generation" g ON g."id" = j."generationId" GROUP BY g."status"`,
        );
        const late = new Promise<null>((resolve) => setTimeout(() => resolve(null), QUEUE_READ_MS).unref());
        rows = Promise.race([query, late]).catch(() => null);
        // read again once the query itself is done: a hanging one is not joined by another at every scrape
        void query.catch(() => {}).finally(() => setImmediate(() => (rows = null)));
      }
      return rows;
    };
    const byStatus = async (field: 'jobs' | 'images') => {
      const rows = await read();
      return rows
        ? ['QUEUED', 'RUNNING'].map((status) => ({
            status,
            value: rows.find((r) => r.status === status)?.[field] ?? 0,
          }))
        : [];
    };
    const byStatusGauge = (name: string, help: string, field: 'jobs' | 'images') =>
      new Gauge({
        name,
        help,
        labelNames: ['status'] as const,
        registers: [this.registry],
        async collect() {
          for (const { status, value } of await byStatus(field)) this.set({ status }, value);
        },
      });
    byStatusGauge(
      'ganvas_queue_generations',
      'generations in the queue, by status (QUEUED waiting, RUNNING claimed by a worker)',
      'jobs',
    );
    byStatusGauge(
      'ganvas_queue_images',
      'images asked for by the generations in the queue, by status (RUNNING ones may have some stored already)',
      'images',
    );
    new Gauge({
      name: 'ganvas_queue_oldest_seconds',
      help: 'age of the oldest generation still waiting for a worker (0 when none waits)',
      registers: [this.registry],
      async collect() {
        const rows = await read();
        if (rows) this.set(rows.find((r) => r.status === 'QUEUED')?.oldest ?? 0);
      },
    });
  }
}
