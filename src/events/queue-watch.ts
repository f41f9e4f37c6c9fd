/**
 * Where each waiting generation stands, for one API instance: its place in the queue (queue.ts's claim
 * order) and when it should start and finish at the recent drawing rate of its model. One snapshot of the
 * whole queue serves every request for PERIOD_MS; while subscribers follow queued generations it is
 * refreshed every PERIOD_MS and the generations whose place changed are published to their subscribers
 * (so a place is pushed at most every PERIOD_MS, with one query pair per instance, not per subscriber).
 */
import type { PrismaClient } from '../db/generated/client.ts';
import { type ModelLoad, type QueuePlace, modelLoads, queuePlaces } from '../queue/queue.ts';
import { type GenerationPubSub, announce } from './bridge.ts';

const PERIOD_MS = 2_000;

export interface Estimate {
  /** jobs a worker of its model takes before it; null unless it waits */
  position: number | null;
  estimatedStartAt: Date | null;
  estimatedFinishAt: Date | null;
  /** MODEL: it waits because no live worker serves its model */
  waitingFor: 'MODEL' | null;
}

type Snapshot = {
  /** when its read began (Date.now()): a generation admitted after it may be missing from it */
  at: number;
  places: Map<string, QueuePlace>;
  loads: Map<string, ModelLoad>;
};

export class QueueWatch {
  private snapshot: Snapshot | null = null;
  private reading: { began: number; snapshot: Promise<Snapshot> } | null = null;
  private followers = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: GenerationPubSub,
  ) {}

  /**
   * Reads the queue and publishes places that moved: one read at a time; a caller meanwhile shares it, unless it
   * needs one begun at `since` or later, which it waits for the current one to make.
   */
  private async read(since = 0): Promise<Snapshot> {
    while (this.reading && this.reading.began < since) await this.reading.snapshot.catch(() => {});
    if (this.reading) return this.reading.snapshot;
    const began = Date.now();
    const snapshot = (async () => {
      try {
        const [places, loads] = await Promise.all([queuePlaces(this.prisma), modelLoads(this.prisma)]);
        const next: Snapshot = {
          at: began,
          places: new Map(places.map((p) => [p.generationId, p])),
          loads: new Map(loads.map((l) => [l.model, l])),
        };
        const before = this.snapshot?.places;
        this.snapshot = next;
        if (before)
          for (const [id, p] of before) if (next.places.get(id)?.position !== p.position) announce(this.pubsub, id);
        return next;
      } finally {
        this.reading = null;
      }
    })();
    this.reading = { began, snapshot };
    return snapshot;
  }

  /**
   * The estimate of a generation as its row, read just before, says it is. A QUEUED one missing from the snapshot
   * (admitted after that read began) makes the queue read again, from after this call began; missing from that
   * too, it left the queue between its row and the read (a worker is starting it): next, place 0.
   */
  async estimate(g: {
    id: string;
    status: string;
    model: string;
    imageCount: number;
    progress: number;
  }): Promise<Estimate> {
    if (g.status !== 'QUEUED' && g.status !== 'RUNNING')
      return { position: null, estimatedStartAt: null, estimatedFinishAt: null, waitingFor: null };
    const asked = Date.now();
    let snap = this.snapshot && asked - this.snapshot.at < PERIOD_MS ? this.snapshot : await this.read();
    if (g.status === 'QUEUED' && !snap.places.has(g.id) && snap.at < asked) snap = await this.read(asked);
    const load = snap.loads.get(g.model);
    const serving = (load?.workers ?? 0) > 0;
    // no worker serves the model: no start to estimate, whatever it drew lately
    const rate = serving ? (load?.imagesPerSecond ?? null) : null;
    const ms = rate ? (images: number) => (1000 * images) / rate : null;
    const remaining = Math.round(g.imageCount * (1 - g.progress));
    // a running one's progress is its row's, now
    if (g.status === 'RUNNING')
      return {
        position: null,
        estimatedStartAt: null,
        estimatedFinishAt: ms ? new Date(asked + ms(remaining)) : null,
        waitingFor: null,
      };
    const place = snap.places.get(g.id);
    const ahead = (place?.imagesAhead ?? 0) + (load?.runningImages ?? 0);
    // from the snapshot's time for the work ahead it counted, and not before now (that work may be drawn by now)
    const start = ms ? Math.max(asked, snap.at + ms(ahead)) : 0;
    return {
      position: place?.position ?? 0,
      estimatedStartAt: ms ? new Date(start) : null,
      estimatedFinishAt: ms ? new Date(start + ms(remaining)) : null,
      waitingFor: serving ? null : 'MODEL',
    };
  }

  /** A subscriber follows a queued generation: the queue is read every PERIOD_MS until the returned stop(). */
  follow(): () => void {
    if (this.followers++ === 0) this.timer = setInterval(() => void this.read().catch(() => {}), PERIOD_MS);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--this.followers === 0 && this.timer) clearInterval(this.timer);
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.followers = 0;
  }
}
