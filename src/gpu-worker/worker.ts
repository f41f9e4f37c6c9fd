/**
 * The job loop. Claims up to maxJobs queued generations, renews their leases while it works, plans every
 * image they still need, runs phi once per distinct caption, S once per style image, and G over images of
 * several requests at once (up to maxBatch a forward pass), storing each image as soon as it exists.
 */
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Generation } from '../db/generated/client.ts';
import { CHANNELS } from '../events/topics.ts';
import { decodePng, encodePng } from '../images/png.ts';
import { type ClaimedJob, LeaseLost, claim, failExhausted, release, renew, retryLater } from '../queue/queue.ts';
import type { Inference } from './inference.ts';
import { type ImagePlan, captionsOf, embeddingOf, planImages } from './plan.ts';
import {
  type NewImage,
  dropJob,
  failGeneration,
  finishGeneration,
  imagePngs,
  startGenerations,
  storeImages,
} from './store.ts';
import { resizeRgb } from '../images/resize.ts';
import { messageOf } from '../errors.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';

export interface WorkerHandle {
  /** Finishes the batch in hand (or hands it back if `handBack`), then stops claiming. */
  stop(handBack?: boolean): Promise<void>;
}

interface Work {
  job: ClaimedJob;
  generation: Generation;

  plans: ImagePlan[];
  stored: number;
  /** Why no more images are made for it: canceled by the user, failed (and already handled), or its lease lost. */
  stopped: false | 'canceled' | 'failed' | 'lost';
}

const RETRY_DELAY_SECONDS = 2;

/**
 * What a user may read of a failure: our own messages as they are; anything else (paths, SQL, stacks) stays in the log.
 */
export class DrawingError extends Error {}
const publicMessage = (err: unknown): string =>
  err instanceof DrawingError
    ? err.message
    : 'the worker failed while drawing this generation (the details are in its log)';
const describe = (err: unknown): string => (err instanceof Error ? (err.stack ?? err.message) : String(err));

export interface WorkerOptions {
  db: Database;
  inference: Inference;
  modelName: string;
  config: Pick<Config, 'maxBatch' | 'maxJobs' | 'leaseSeconds' | 'workerId' | 'jobTimeLimitSeconds'>;
  log: Logger;
  metrics: Metrics;
}

export async function startWorker(opts: WorkerOptions): Promise<WorkerHandle> {
  const { db, inference, config, metrics } = opts;
  const log = opts.log.child({ worker: config.workerId });
  const prisma = db.prisma;
  const size = inference.config.imageSize;
  let stopping = false;
  let handBack = false;
  let wake: (() => void) | null = null;
  const unlisten = await db.listen(CHANNELS.jobs, () => wake?.());

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = null;
        resolve();
      }
      wake = done;
    });

  /** S(style image) of every style transfer, by generation id (missing where its image is gone or unreadable). */
  async function styleVectors(works: Work[]): Promise<Map<string, Float32Array>> {
    const transfers = works.filter((w) => w.generation.kind === 'STYLE_TRANSFER');
    if (transfers.length === 0) return new Map();
    const ids = [...new Set(transfers.map((w) => w.generation.styleImageId).filter((id): id is string => id !== null))];
    const stored = await imagePngs(prisma, ids);
    const sources: { id: string; rgb: Uint8Array }[] = [];
    for (const w of transfers) {
      const png = w.generation.stylePng ?? stored.get(w.generation.styleImageId ?? '');
      if (!png) continue;
      try {
        const { rgb, width, height } = decodePng(Buffer.from(png));
        sources.push({
          id: w.generation.id,
          rgb: width === size && height === size ? rgb : resizeRgb(rgb, width, height, size),
        });
      } catch (err) {
        await failWork(w, new DrawingError(`its style image could not be read (${messageOf(err)})`));
      }
    }
    const z = sources.length ? await inference.styleOf(sources.map((s) => s.rgb)) : [];
    return new Map(sources.map((s, i) => [s.id, z[i]]));
  }

  /** A failed attempt: retried later, or FAILED once it has had all its attempts (nothing, if the lease was lost). */
  async function failWork(w: Work, err: unknown): Promise<void> {
    w.stopped = 'failed';
    const message = publicMessage(err);
    const last = w.job.attempts >= w.job.maxAttempts;
    log.warn(
      { generation: w.generation.id, attempt: w.job.attempts, of: w.job.maxAttempts, err: describe(err) },
      last ? 'generation failed' : 'attempt failed, retried later',
    );
    try {
      if (last) {
        await failGeneration(prisma, w.generation.id, w.job.id, config.workerId, message);
        metrics.generationsFinished.inc({ status: 'FAILED' });
      } else if (!(await retryLater(prisma, w.job.id, config.workerId, message, RETRY_DELAY_SECONDS * w.job.attempts)))
        throw new LeaseLost(w.job.id);
    } catch (e) {
      if (!(e instanceof LeaseLost)) throw e;
      w.stopped = 'lost';
      log.warn({ generation: w.generation.id }, e.message);
    }
  }

  /** G over one chunk; when a pass fails, each generation of it is drawn alone so only the one that breaks fails. */
  async function draw(
    chunk: { w: Work; plan: ImagePlan }[],
    styles: Map<string, Float32Array>,
    phi: Map<string, Float32Array>,
    first: Promise<Uint8Array[]>,
  ): Promise<(Uint8Array | null)[]> {
    const items = (part: typeof chunk) =>
      part.map(({ w, plan }) => ({
        z: plan.z === 'style' ? styles.get(w.generation.id)! : plan.z,
        h: embeddingOf(plan.h, phi),
      }));
    try {
      return await first;
    } catch (err) {
      if (inference.dead) throw err; // the thread is gone: nothing will draw
      const out: (Uint8Array | null)[] = chunk.map(() => null);
      for (const w of new Set(chunk.map((c) => c.w))) {
        const mine = chunk.map((c, k) => ({ c, k })).filter(({ c }) => c.w === w);
        try {
          const pixels = await inference.draw(items(mine.map(({ c }) => c)));
          mine.forEach(({ k }, i) => (out[k] = pixels[i]));
        } catch (alone) {
          if (inference.dead) throw alone;
          await failWork(w, alone);
        }
      }
      return out;
    }
  }

  async function run(works: Work[]): Promise<void> {
    const captions = [...new Set(works.flatMap((w) => w.plans.flatMap((p) => captionsOf(p.h))))];
    const phi = new Map((await inference.embed(captions)).map((v, i) => [captions[i], v]));
    const styles = await styleVectors(works);
    // a generation that can't run fails alone, not the requests batched with it
    for (const w of works)
      if (w.generation.kind === 'STYLE_TRANSFER' && !w.stopped && !styles.has(w.generation.id))
        await failWork(w, new DrawingError(`style image ${w.generation.styleImageId} no longer exists`));
    const queue = works.flatMap((w) => w.plans.map((plan) => ({ w, plan })));
    /** The next forward pass, started at once: it runs on the inference thread while this one stores. */
    const nextPass = () => {
      let chunk: typeof queue = [];
      while (chunk.length === 0 && queue.length > 0)
        chunk = queue.splice(0, config.maxBatch).filter(({ w }) => !w.stopped);
      if (chunk.length === 0) return null;
      const started = performance.now();
      const pixels = inference.draw(
        chunk.map(({ w, plan }) => ({
          z: plan.z === 'style' ? styles.get(w.generation.id)! : plan.z,
          h: embeddingOf(plan.h, phi),
        })),
      );
      pixels.then(
        () => {
          metrics.batchSeconds.observe((performance.now() - started) / 1000);
          metrics.batchImages.observe(chunk.length);
        },
        () => {},
      ); // awaited below; a pass abandoned by an error must not go unhandled
      return { chunk, pixels };
    };
    for (let pass = nextPass(); pass;) {
      const { chunk } = pass;
      const pixels = await draw(chunk, styles, phi, pass.pixels);
      pass = nextPass();
      // each generation's images of this pass in one transaction, which first checks it was not canceled
      const byWork = new Map<Work, NewImage[]>();
      chunk.forEach(({ w, plan }, k) => {
        if (!pixels[k]) return;
        const g = w.generation;
        const text: Record<string, string> = {
          caption: plan.caption,
          seed: String(plan.seed),
          model: g.model,
          kind: g.kind,
        };
        if (plan.mix !== null) text.mix = String(plan.mix);
        const png = encodePng(pixels[k]!, size, size, text);
        byWork.set(w, [
          ...(byWork.get(w) ?? []),
          { index: plan.index, caption: plan.caption, seed: plan.seed, mix: plan.mix, width: size, height: size, png },
        ]);
      });
      for (const [w, images] of byWork) {
        if (w.stopped) continue;
        try {
          if (await storeImages(prisma, w.generation, images, { id: w.job.id, workerId: config.workerId })) {
            w.stored += images.length;
            metrics.images.inc(images.length);
          } else w.stopped = 'canceled';
        } catch (err) {
          if (!(err instanceof LeaseLost)) throw err;
          w.stopped = 'lost';
          log.warn({ generation: w.generation.id }, err.message);
        }
      }
    }
  }

  /** Finishes or drops a work's job; a lost lease only loses this one. */
  async function settle(w: Pick<Work, 'job' | 'stopped'> & { generation: Generation | null }): Promise<void> {
    try {
      if (w.stopped === 'canceled') await dropJob(prisma, w.job.id, config.workerId);
      else if (!w.stopped) {
        await finishGeneration(prisma, w.generation!, w.job.id, config.workerId);
        metrics.generationsFinished.inc({ status: 'SUCCEEDED' });
        log.info({ generation: w.generation!.id }, 'generation succeeded');
      }
    } catch (err) {
      if (!(err instanceof LeaseLost)) throw err;
      log.warn({ generation: w.generation?.id }, err.message);
    }
  }

  async function processBatch(jobs: ClaimedJob[]): Promise<void> {
    let held = jobs.map((j) => j.id);
    const claimedAt = Date.now();
    // renewed while it works, up to the job time limit: then the lease lapses and the job goes back
    const renewal = setInterval(
      () => {
        if (Date.now() - claimedAt > config.jobTimeLimitSeconds * 1000) held = [];
        renew(prisma, config.workerId, held, config.leaseSeconds)
          .then((ids) => (held = ids))
          .catch((err: unknown) => log.warn(`lease renewal failed: ${messageOf(err)}`));
      },
      (config.leaseSeconds * 1000) / 3,
    );
    log.info({ generations: jobs.map((j) => j.generationId) }, `claimed ${jobs.length} generation(s)`);
    try {
      const started = await startGenerations(
        prisma,
        jobs.map((j) => j.generationId),
      );
      const works: Work[] = [];
      for (const job of jobs) {
        const s = started.find((x) => x.generation.id === job.generationId);
        if (!s || s.generation.status !== 'RUNNING') {
          await settle({ job, generation: null, stopped: 'canceled' }); // canceled or gone while queued
          continue;
        }
        works.push({
          job,
          generation: s.generation,
          plans: planImages(s.generation, inference.config.zDim, s.done),
          stored: 0,
          stopped: false,
        });
      }
      try {
        await run(works);
      } catch (err) {
        if (inference.dead) {
          // not these jobs' fault: hand them back (attempt not counted) for a worker that can draw
          await release(
            prisma,
            config.workerId,
            works.filter((w) => !w.stopped).map((w) => w.job.id),
          );
          throw err;
        }
        for (const w of works) if (!w.stopped) await failWork(w, err);
      }
      for (const w of works) await settle(w);
    } finally {
      clearInterval(renewal);
    }
  }

  const loop = (async () => {
    while (!stopping) {
      if (inference.dead) break; // the model is gone: stop claiming (the process exits non-zero, see services.ts)
      let jobs: ClaimedJob[];
      try {
        await failExhausted(prisma);
        jobs = await claim(prisma, config.workerId, [opts.modelName], config.maxJobs, config.leaseSeconds);
      } catch (err) {
        log.warn(`claim failed (database unreachable?): ${messageOf(err)}`);
        await sleep(1000);
        continue;
      }
      if (jobs.length === 0) {
        await sleep(1000); // woken early by a NOTIFY on the jobs channel
        continue;
      }
      if (stopping && handBack) {
        await release(
          prisma,
          config.workerId,
          jobs.map((j) => j.id),
        );
        break;
      }
      try {
        await processBatch(jobs);
      } catch (err) {
        // the database went away mid-batch: the leases lapse and the jobs return to the queue
        log.warn({ generations: jobs.map((j) => j.generationId) }, `batch interrupted: ${messageOf(err)}`);
        await sleep(1000);
      }
    }
  })();

  return {
    stop: async (back = false) => {
      stopping = true;
      handBack = back;
      wake?.();
      await loop;
      await unlisten();
    },
  };
}
