/**
 * The model catalog, in Postgres: workers register the models they serve (and keep them alive with a
 * heartbeat), an API registers the ones in its own MODEL_DIR, and the API answers `models` and checks the
 * model a request names against it. A model in the catalog that no live worker serves can still be asked
 * for: its requests wait (workers register themselves: src/queue/workers.ts).
 */
import type { PrismaClient } from '../db/generated/client.ts';
import { badInput, unavailable } from '../errors.ts';
import type { ModelEntry } from '../model/checkpoint-meta.ts';
import { LIVE_SECONDS } from '../queue/workers.ts';

/** How long the API trusts its read of the catalog. */
const CACHE_MS = 1_000;
/** How long after a request the catalog is kept fresh in the background (keepFresh): an idle API reads nothing. */
const KEEP_FRESH_MS = 60_000;

export interface ModelInfo extends ModelEntry {
  isDefault: boolean;
  /** live workers serving it now */
  workers: number;
}

export class ModelCatalog {
  private read: { at: number; models: Promise<ModelInfo[]> } | null = null;
  private usedAt = 0;

  /** `defaultModel`: the model of requests that name none (the API's first MODEL_DIR). */
  constructor(
    private readonly prisma: PrismaClient,
    readonly defaultModel: string,
  ) {}

  /** Every model of the catalog with its live workers, the default first. */
  list(): Promise<ModelInfo[]> {
    this.usedAt = Date.now();
    if (!this.read || this.usedAt - this.read.at > CACHE_MS) {
      const read = (this.read = this.fetch());
      read.models.catch(() => this.read === read && (this.read = null));
    }
    return this.read.models;
  }

  /**
   * Reads the catalog again every half CACHE_MS while requests come (for KEEP_FRESH_MS after the last), until the
   * returned stop: a request then finds a read younger than CACHE_MS and does not wait for one. A request a second,
   * as an app at light load sends them, waited for a read each time, 1-2 ms before its admission (docs/benchmarks.md).
   */
  keepFresh(): () => void {
    let reading = false;
    const timer = setInterval(() => {
      if (reading || Date.now() - this.usedAt > KEEP_FRESH_MS) return; // one at a time: a slow database gets no pile
      reading = true;
      const next = this.fetch();
      next.models
        .then(
          () => (this.read = next), // a failed read leaves the last to age (a request then reads, and fails, itself)
          () => {},
        )
        .finally(() => (reading = false));
    }, CACHE_MS / 2);
    timer.unref();
    return () => clearInterval(timer);
  }

  private fetch(): { at: number; models: Promise<ModelInfo[]> } {
    const at = Date.now();
    const models = this.prisma.$queryRaw<Omit<ModelInfo, 'isDefault'>[]>`
        SELECT m."name", m."imageSize", m."variant", m."untrained", m."trainingSteps", m."summary", m."captionCharacters",
               count(w."workerId") FILTER (WHERE w."heartbeatAt" > now() - make_interval(secs => ${LIVE_SECONDS}))::int
                 AS "workers"
          FROM "Model" m LEFT JOIN "ModelWorker" w ON w."model" = m."name"
         GROUP BY m."name" ORDER BY m."name"`.then((rows) =>
      rows
        .map((r) => ({ ...r, isDefault: r.name === this.defaultModel }))
        .sort((a, b) => Number(b.isDefault) - Number(a.isDefault)),
    );
    return { at, models };
  }

  /** The model a request names, or the default; names not in the catalog are the user's error. */
  async resolve(name: string | null | undefined): Promise<ModelInfo> {
    const models = await this.list();
    const wanted = name ?? this.defaultModel;
    const m = models.find((x) => x.name === wanted);
    if (m) return m;
    // a deployment whose workers have not started yet: the server's side, for a moment
    if (name == null)
      throw unavailable(`no default model "${wanted}" yet: no worker or API has registered it; send again soon`, 5);
    throw badInput(
      `unknown model "${name.slice(0, 100)}"; available: ${models.map((x) => x.name).join(', ')}`,
      'model',
    );
  }
}
