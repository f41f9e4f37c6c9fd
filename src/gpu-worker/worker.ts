/**
 * The job loop, in a few named steps: claim up to maxJobs queued generations; hold their leases while it
 * works; start them and plan every image they still need; run phi once per distinct caption, S once per
 * style image, and G over images of several requests at once (up to maxBatch a forward pass), storing
 * each pass as soon as it exists; settle each job. Repeat until stopped.
 */
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { Generation } from '../db/generated/client.ts';
import { Doze } from '../events/doze.ts';
import { CHANNELS } from '../events/topics.ts';
import { decodePng } from '../images/png.ts';
import { PngPool, pngThreads } from '../images/png-pool.ts';
import { type ClaimedJob, LeaseLost, claim, release, renew, retryLater } from '../queue/queue.ts';
import { modelEntry } from '../model/checkpoint-meta.ts';
import { latentDim } from '../model/config.ts';
import { HEARTBEAT_MS, heartbeat, registerModels, unregister } from '../queue/workers.ts';
import { EXHAUSTED_SWEEP_MS, sweepExhausted } from '../queue/sweep.ts';
import type { Inference } from './inference.ts';
import { PhiCache } from './phi-cache.ts';
import { type ImagePlan, captionsOf, embeddingOf, planImages } from './plan.ts';
import { type NewImage, dropJob, failGeneration, startGenerations, storePass, storePassRetried } from './store.ts';
import { resizeRgb } from '../images/resize.ts';
import { messageOf } from '../errors.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';

export interface WorkerHandle {
  /** Finishes the batches in hand (or hands back what it claims next if `handBack`), then stops claiming. */
  stop(handBack?: boolean): Promise<void>;
}

interface Work {
  job: ClaimedJob;
  generation: Generation;

  plans: ImagePlan[];
  /** Images of `plans` not stored yet: the pass that stores the last ones also ends the generation. */
  left: number;
  /**
   * Why no more images are made for it: finished (by its last pass), canceled by the user, failed (and already
   * handled), or its lease lost.
   */
  stopped: false | 'finished' | 'canceled' | 'failed' | 'lost';
}

const RETRY_DELAY_SECONDS = 2;
/**
 * An idle worker's poll, and how long a claim that found no more due jobs is believed when no job was admitted since
 * (no NOTIFY on the jobs channel): claims in between are skipped. A job that turns due without a NOTIFY (a retry's
 * delay ending, a lapsed lease) waits at most this long after the last claim, as it waits for an idle worker's poll.
 */
const DRAINED_TRUST_MS = 1000;
const STORE_RETRY_MS = 250;

/**
 * A failure of the request itself (its style image gone or unreadable): it ends FAILED at once, as every attempt
 * would fail the same way, and its message is what the user reads. Of any other error, which is retried, the user
 * reads a general message (paths, SQL, stacks stay in the log).
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
  /** The checkpoint the inference thread loaded: its folder name is the model's name. */
  modelDir: string;
  config: Pick<Config, 'maxBatch' | 'maxJobs' | 'leaseSeconds' | 'workerId' | 'jobTimeLimitSeconds'>;
  log: Logger;
  metrics: Metrics;
}

/** Serves one model: registers it in the catalog (with a heartbeat while it runs) and runs its job loop. */
export async function startWorker(opts: WorkerOptions): Promise<WorkerHandle> {
  const { db, config, inference } = opts;
  const entry = await modelEntry(opts.modelDir, inference.meta);
  const server = { workerId: config.workerId, maxJobs: config.maxJobs };
  await registerModels(db.prisma, [entry], server);
  const beat = setInterval(
    () =>
      void heartbeat(db.prisma, server, [entry.name]).catch((err: unknown) =>
        opts.log.warn(`heartbeat failed: ${messageOf(err)}`),
      ),
    HEARTBEAT_MS,
  );
  const png = new PngPool(pngThreads(inference.threadCount));
  const worker = new JobLoop(opts, entry.name, png);
  const unlisten = await db.listen(CHANNELS.jobs, (payload) => worker.wake(payload));
  const unhook = db.onReconnect(() => worker.wake()); // the NOTIFYs sent while it reconnected are lost
  const loop = worker.run();
  const sweep = sweepExhausted(db, opts.metrics, opts.log, EXHAUSTED_SWEEP_MS.worker);
  return {
    stop: async (handBack = false) => {
      worker.stop(handBack);
      await loop;
      await sweep.stop();
      await png.stop();
      clearInterval(beat);
      unhook();
      await unregister(db.prisma, config.workerId, entry.name).catch(() => {}); // a dead worker's row just ages out
      await unlisten();
    },
  };
}

type Pass = { w: Work; plan: ImagePlan }[];

/** Called once a batch's last pass is with the inference threads, and once its pixels are back. */
interface LastPass {
  sent(): void;
  drawn(): void;
}

class JobLoop {
  private readonly prisma: Database['prisma'];
  private readonly log: Logger;
  private readonly size: number;
  private stopping = false;
  private handBack = false;
  private readonly doze = new Doze();
  private claimFailing = false;
  /** Jobs NOTIFYs (wakes) so far; a claim that one came during does not count as having drained the queue. */
  private wakes = 0;
  /** When a claim found every due job of the model taken (it took fewer than it may), if no job was admitted since. */
  private drainedAt: number | null = null;
  /**
   * Nothing is drawing, and no claim has found work since: the next admission's NOTIFY starts its captions' phi
   * (wake), one a spell (a burst of them is claimed together, and embedded in one call).
   */
  private idle = false;
  private readonly phi: PhiCache;

  constructor(
    private readonly o: WorkerOptions,
    private readonly modelName: string,
    private readonly png: PngPool,
  ) {
    this.prisma = o.db.prisma;
    this.log = o.log.child({ worker: o.config.workerId });
    this.size = o.inference.config.imageSize;
    this.phi = new PhiCache((captions) => o.inference.embed(captions));
  }

  /**
   * Claims and processes batches until stopped, or until the model is gone (the process then exits non-zero).
   * Once a batch's last pass is with the inference threads, the next batch is claimed if the jobs it would
   * take ask for a full pass of images, so its start and first pass overlap this one's last pass and stores;
   * otherwise the claim waits until that pass is drawn and takes what is queued by then: claiming early would
   * take the few jobs that arrived meanwhile and draw them in a small pass. It holds two batches at most.
   */
  async run(): Promise<void> {
    const inHand = new Set<Promise<void>>();
    let drawn: Promise<void> = Promise.resolve();
    while (!this.stopping && !this.o.inference.dead) {
      // two batches at most: one drawing its last pass, the next claimed to overlap it (claiming on would take the
      // whole queue into this process while other workers idle, and its leases would lapse before it is drawn)
      if (inHand.size >= 2) {
        await Promise.race(inHand);
        continue;
      }
      let jobs = inHand.size > 0 ? await this.claim(this.o.config.maxBatch) : [];
      if (jobs.length === 0) {
        await drawn;
        if (this.stopping || this.o.inference.dead) break;
        this.doze.turn(); // a job admitted from here on wakes the sleep below, even one admitted during the claim
        this.idle = true;
        jobs = await this.claim(1);
      }
      if (jobs.length === 0) {
        // until the poll is due (a second after the last claim that found nothing more due), or a NOTIFY on the jobs
        // channel; then a claim, whatever the clock says
        const drainedAt = this.drainedAt ?? performance.now();
        await this.doze.sleep(Math.max(0, drainedAt + DRAINED_TRUST_MS - performance.now()));
        this.drainedAt = null;
        continue;
      }
      this.idle = false;
      if (this.stopping && this.handBack) {
        await release(this.prisma, jobs[0].holder, jobs);
        break;
      }
      const last = {} as LastPass;
      const sent = new Promise<void>((resolve) => (last.sent = resolve));
      const lastDrawn = new Promise<void>((resolve) => (last.drawn = resolve));
      const batch: Promise<void> = this.process(jobs, last)
        .catch((err: unknown) =>
          // the database went away mid-batch: the leases lapse and the jobs return to the queue
          this.log.warn({ generations: jobs.map((j) => j.generationId) }, `batch interrupted: ${messageOf(err)}`),
        )
        .finally(() => inHand.delete(batch));
      inHand.add(batch);
      drawn = Promise.race([lastDrawn, batch]);
      await Promise.race([sent, batch]);
    }
    await Promise.all(inHand);
  }

  /** Finishes the batches in hand (or hands back what it claims next), then stops claiming. */
  stop(handBack: boolean): void {
    this.stopping = true;
    this.handBack = handBack;
    this.wake();
  }

  /**
   * A job was admitted (or may have been: a NOTIFY lost in a reconnect), or the loop stops. `payload`: the jobs
   * channel's; an admission's names the request's model and captions (the admission migrations): a worker of that
   * model with nothing drawing starts their phi at once, so that it runs while the claim is in the database (the
   * draw then takes it from the PhiCache). A busy worker does not: its threads are drawing, and at that load the
   * request may well go to another worker.
   */
  wake(payload?: string): void {
    this.wakes++;
    this.drainedAt = null;
    if (payload && this.idle && this.foresee(payload)) this.idle = false;
    this.doze.wake();
  }

  /** Starts phi of the captions an admission's NOTIFY names for this worker's model; false if it names none. */
  private foresee(payload: string): boolean {
    let hint: unknown;
    try {
      hint = JSON.parse(payload);
    } catch {
      return false; // a generation id alone: a hand-back's, or captions too long for a NOTIFY
    }
    const { model, captions } = (hint ?? {}) as { model?: unknown; captions?: unknown };
    if (model !== this.modelName || !Array.isArray(captions) || !captions.every((c) => typeof c === 'string'))
      return false;
    // should it fail, the draw asks again, and its errors are the ones handled
    this.phi.of(captions as string[]).catch(() => {});
    return true;
  }

  /**
   * Claims due jobs if they ask for at least `minImages` images ([] when the database is unreachable: the loop waits
   * and retries). Jobs that used their attempts are ended by the worker's sweep (startWorker), beside the claims.
   * None is asked for while the last claim's finding that nothing more was due still holds (DRAINED_TRUST_MS): at
   * light load, the claims a batch would make meanwhile (to overlap its last pass, and after it) cost a round trip
   * each on the request's own path and find nothing.
   */
  private async claim(minImages: number): Promise<ClaimedJob[]> {
    const { config } = this.o;
    const { modelName } = this;
    if (this.drainedAt !== null && performance.now() - this.drainedAt < DRAINED_TRUST_MS) return [];
    const wakes = this.wakes;
    const began = performance.now();
    try {
      const jobs = await claim(this.o.db, config.workerId, [modelName], config.maxJobs, config.leaseSeconds, minImages);
      if (this.claimFailing) this.log.info('claiming again: the database answers');
      this.claimFailing = false;
      // fewer than the limit, and (when it asked for a full pass) some: it took every job due then
      const drained = jobs.length < config.maxJobs && (jobs.length > 0 || minImages <= 1);
      this.drainedAt = drained && this.wakes === wakes ? began : null;
      return jobs;
    } catch (err) {
      // once per outage, not once a claim (a second's loop may claim twice)
      if (!this.claimFailing) this.log.warn(`claim failed (database unreachable?), retrying: ${messageOf(err)}`);
      this.claimFailing = true;
      return [];
    }
  }

  /**
   * One claimed batch: hold its leases, start and plan it, draw and store it, settle each job, telling `last`
   * when its last pass is sent and drawn (at once when it has none).
   */
  private async process(jobs: ClaimedJob[], last: LastPass): Promise<void> {
    this.log.info({ generations: jobs.map((j) => j.generationId) }, `claimed ${jobs.length} generation(s)`);
    const letGo = this.holdLeases(jobs);
    try {
      const works = await this.start(jobs);
      try {
        await this.draw(works, last);
      } catch (err) {
        // a dead inference thread fails the attempt too (and then this worker): were one of these jobs what kills
        // it, handing them back uncounted would restart the worker on it for ever
        for (const w of works) if (!w.stopped) await this.fail(w, err);
        if (this.o.inference.dead) throw err;
      }
      for (const w of works) await this.settle(w);
    } finally {
      letGo();
    }
  }

  /** Renews the batch's leases while it works, up to the job time limit (then they lapse and the jobs go back). */
  private holdLeases(jobs: ClaimedJob[]): () => void {
    const { config } = this.o;
    let held = jobs.map((j) => j.id);
    const claimedAt = Date.now();
    const renewal = setInterval(
      () => {
        if (Date.now() - claimedAt > config.jobTimeLimitSeconds * 1000) held = [];
        renew(this.prisma, jobs[0].holder, held, config.leaseSeconds)
          .then((ids) => (held = ids))
          .catch((err: unknown) => this.log.warn(`lease renewal failed: ${messageOf(err)}`));
      },
      (config.leaseSeconds * 1000) / 3,
    );
    return () => clearInterval(renewal);
  }

  /**
   * Marks the generations RUNNING that their claim did not start, and plans the images each still needs; one canceled
   * while queued just leaves.
   */
  private async start(jobs: ClaimedJob[]): Promise<Work[]> {
    const rest = jobs.filter((j) => !j.started).map((j) => j.generationId);
    const started = [
      ...jobs.flatMap((j) => (j.started ? [{ generation: j.started, done: new Set<number>() }] : [])),
      ...(rest.length > 0 ? await startGenerations(this.prisma, rest) : []),
    ];
    const works: Work[] = [];
    for (const job of jobs) {
      const s = started.find((x) => x.generation.id === job.generationId);
      if (!s || s.generation.status !== 'RUNNING') {
        await this.settle({ job, generation: null, stopped: 'canceled' });
        continue;
      }
      const plans = planImages(s.generation, latentDim(this.o.inference.config), s.done);
      works.push({ job, generation: s.generation, plans, left: plans.length, stopped: false });
    }
    return works;
  }

  /**
   * phi of every caption once (or not at all for one drawn lately: PhiCache), S of every style image once, then G
   * in passes of up to maxBatch images across generations; each pass is stored while the next one runs on the
   * inference thread.
   */
  private async draw(works: Work[], last: LastPass): Promise<void> {
    const { inference, config, metrics } = this.o;
    const phi = await this.forAllOrAlone(works, (ws) =>
      this.phi.of(ws.flatMap((w) => w.plans.flatMap((p) => captionsOf(p.h)))),
    );
    const styles = await this.styleVectors(works);
    const inputs = (pass: Pass) =>
      pass.map(({ w, plan }) => ({
        z: plan.z === 'style' ? styles.get(w.generation.id)! : plan.z,
        h: embeddingOf(plan.h, phi, inference.centre),
      }));
    const queue: Pass = works.flatMap((w) => w.plans.map((plan) => ({ w, plan })));
    const nextPass = () => {
      let pass: Pass = [];
      while (pass.length === 0 && queue.length > 0)
        pass = queue.splice(0, config.maxBatch).filter(({ w }) => !w.stopped);
      if (queue.length === 0) last.sent();
      if (pass.length === 0) return null;
      const started = performance.now();
      const pixels = inference.draw(inputs(pass));
      pixels.then(
        () => {
          metrics.batchSeconds.observe((performance.now() - started) / 1000);
          metrics.batchImages.observe(pass.length);
        },
        () => {}, // awaited below; a pass abandoned by an error must not go unhandled
      );
      return { pass, pixels };
    };
    for (let next = nextPass(); next;) {
      const { pass } = next;
      const pixels = await this.drawnOrAlone(pass, next.pixels, inputs);
      next = nextPass();
      if (!next) last.drawn();
      await this.store(pass, pixels);
    }
    last.drawn();
  }

  /**
   * `compute` for all the works at once (`all`: a call already under way); when that fails (the inference thread
   * alive), for each work alone, so that only one that breaks it fails, not the requests batched with it.
   */
  private async forAllOrAlone<K, V>(
    works: Work[],
    compute: (works: Work[]) => Promise<Map<K, V>>,
    all: Promise<Map<K, V>> = compute(works),
  ): Promise<Map<K, V>> {
    try {
      return await all;
    } catch (err) {
      if (this.o.inference.dead) throw err; // the thread is gone: nothing will compute
      const out = new Map<K, V>();
      for (const w of works)
        try {
          for (const [k, v] of await compute([w])) out.set(k, v);
        } catch (alone) {
          if (this.o.inference.dead) throw alone;
          await this.fail(w, alone);
        }
      return out;
    }
  }

  /**
   * A pass's pixels, null where its generation failed: the pass `drawn` as sent; when it fails, each generation of it
   * drawn alone (forAllOrAlone).
   */
  private async drawnOrAlone(
    pass: Pass,
    drawn: Promise<Uint8Array[]>,
    inputs: (pass: Pass) => { z: Float32Array; h: Float32Array }[],
  ): Promise<(Uint8Array | null)[]> {
    /** The pixels of the pass's images at positions `ks`, by position. */
    const at = (ks: number[], pixels: Uint8Array[]) => new Map(ks.map((k, i) => [k, pixels[i]]));
    const pixels = await this.forAllOrAlone(
      [...new Set(pass.map((c) => c.w))],
      async (ws) => {
        const ks = pass.flatMap((c, k) => (ws.includes(c.w) ? [k] : []));
        return at(ks, await this.o.inference.draw(inputs(ks.map((k) => pass[k]))));
      },
      drawn.then((all) =>
        at(
          pass.map((_, k) => k),
          all,
        ),
      ),
    );
    return pass.map((_, k) => pixels.get(k) ?? null);
  }

  /**
   * A pass's images as PNGs (encoded on the PNG pool's threads), every generation's in one transaction
   * (storePassRetried) that checks each still runs; a generation whose last images these are ends SUCCEEDED in the
   * same transaction.
   */
  private async store(pass: Pass, pixels: (Uint8Array | null)[]): Promise<void> {
    const size = this.size;
    const drawn = pass.flatMap(({ w, plan }, k) => {
      if (!pixels[k]) return [];
      const text: Record<string, string> = {
        caption: plan.caption,
        seed: String(plan.seed),
        model: w.generation.model,
        kind: w.generation.kind,
      };
      if (plan.mix !== null) text.mix = String(plan.mix);
      return [{ w, plan, rgb: pixels[k]!, text }];
    });
    const pngs = await this.png.encode(
      drawn.map(({ rgb, text }) => ({ rgb, text })),
      size,
      size,
    );
    const byWork = new Map<Work, NewImage[]>();
    drawn.forEach(({ w, plan }, i) => {
      const image = {
        index: plan.index,
        caption: plan.caption,
        seed: plan.seed,
        mix: plan.mix,
        width: size,
        height: size,
        png: pngs[i],
      };
      byWork.set(w, [...(byWork.get(w) ?? []), image]);
    });
    const storing = [...byWork].filter(([w]) => !w.stopped);
    if (storing.length === 0) return;
    const items = storing.map(([w, images]) => ({
      generation: w.generation,
      jobId: w.job.id,
      images,
      finish: w.left === images.length,
    }));
    const outcome = await storePassRetried(this.o.db, storing[0][0].job.holder, items, STORE_RETRY_MS, (message) =>
      this.log.warn(message),
    );
    const { metrics } = this.o;
    for (const [w, images] of storing) {
      const stored = outcome.get(w.generation.id) ?? 'lost';
      if (stored === 'stored' || stored === 'finished') {
        metrics.images.inc(images.length);
        w.left -= images.length;
      }
      if (stored === 'stored') continue;
      w.stopped = stored;
      if (stored === 'finished') {
        metrics.generationsFinished.inc({ status: 'SUCCEEDED' });
        this.log.info({ generation: w.generation.id }, 'generation succeeded');
      } else if (stored === 'lost') this.log.warn({ generation: w.generation.id }, new LeaseLost(w.job.id).message);
    }
  }

  /**
   * S(style image) of every style transfer, by generation id (a stored image is copied into it at admission); one
   * whose image cannot be read, or whose source was deleted before it was admitted, fails alone, not the requests
   * batched with it.
   */
  private async styleVectors(works: Work[]): Promise<Map<string, Float32Array>> {
    const size = this.size;
    const transfers = works.filter((w) => w.generation.kind === 'STYLE_TRANSFER' && !w.stopped);
    if (transfers.length === 0) return new Map();
    const sources = new Map<Work, Uint8Array>();
    for (const w of transfers) {
      if (!w.generation.stylePng) {
        await this.fail(w, new DrawingError(`style image ${w.generation.styleImageId} was deleted before the request`));
        continue;
      }
      try {
        const { rgb, width, height } = decodePng(Buffer.from(w.generation.stylePng));
        sources.set(w, width === size && height === size ? rgb : resizeRgb(rgb, width, height, size));
      } catch (err) {
        await this.fail(w, new DrawingError(`its style image could not be read (${messageOf(err)})`));
      }
    }
    return this.forAllOrAlone([...sources.keys()], async (ws) => {
      const z = ws.length ? await this.o.inference.styleOf(ws.map((w) => sources.get(w)!)) : [];
      return new Map(ws.map((w, i) => [w.generation.id, z[i]]));
    });
  }

  /**
   * A failed attempt: retried later, or FAILED once it has had all its attempts or when no attempt can succeed (a
   * DrawingError); nothing, if the lease was lost.
   */
  private async fail(w: Work, err: unknown): Promise<void> {
    const { metrics } = this.o;
    w.stopped = 'failed';
    const message = publicMessage(err);
    const last = err instanceof DrawingError || w.job.attempts >= w.job.maxAttempts;
    this.log.warn(
      { generation: w.generation.id, attempt: w.job.attempts, of: w.job.maxAttempts, err: describe(err) },
      last ? 'generation failed' : 'attempt failed, retried later',
    );
    try {
      if (last) {
        await failGeneration(this.prisma, w.generation.id, w.job.id, w.job.holder, message);
        metrics.generationsFinished.inc({ status: 'FAILED' });
      } else if (
        !(await retryLater(this.prisma, w.job.id, w.job.holder, message, RETRY_DELAY_SECONDS * w.job.attempts))
      )
        throw new LeaseLost(w.job.id);
    } catch (e) {
      if (!(e instanceof LeaseLost)) throw e;
      w.stopped = 'lost';
      this.log.warn({ generation: w.generation.id }, e.message);
    }
  }

  /**
   * Finishes (one whose images were all stored before this attempt) or drops a work's job; a lost lease only
   * loses this one.
   */
  private async settle(w: Pick<Work, 'job' | 'stopped'> & { generation: Generation | null }): Promise<void> {
    const { metrics } = this.o;
    try {
      if (w.stopped === 'canceled') await dropJob(this.prisma, w.job.id, w.job.holder);
      else if (!w.stopped) {
        // all its images were stored before this attempt: an empty last pass ends it
        const ended = await storePass(this.o.db, w.job.holder, [
          { generation: w.generation!, jobId: w.job.id, images: [], finish: true },
        ]);
        const outcome = ended.get(w.generation!.id);
        if (outcome === 'lost') throw new LeaseLost(w.job.id);
        if (outcome === 'canceled') return await dropJob(this.prisma, w.job.id, w.job.holder);
        metrics.generationsFinished.inc({ status: 'SUCCEEDED' });
        this.log.info({ generation: w.generation!.id }, 'generation succeeded');
      }
    } catch (err) {
      if (!(err instanceof LeaseLost)) throw err;
      this.log.warn({ generation: w.generation?.id }, err.message);
    }
  }
}
