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
  at: number;
  places: Map<string, QueuePlace>;
  loads: Map<string, ModelLoad>;
};

export class QueueWatch {
  private snapshot: Snapshot | null = null;
  private reading: Promise<Snapshot> | null = null;
  private followers = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly pubsub: GenerationPubSub,
  ) {}

  /** Reads the queue (one read at a time; callers meanwhile share it) and publishes places that moved. */
  private read(): Promise<Snapshot> {
    this.reading ??= (async () => {
      try {
        const [places, loads] = await Promise.all([queuePlaces(this.prisma), modelLoads(this.prisma)]);
        const next: Snapshot = {
          at: Date.now(),
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
    return this.reading;
  }

  /** The estimate of a generation as it is now; a QUEUED one newer than the snapshot makes it read again. */
  async estimate(g: {
    id: string;
    status: string;
    model: string;
    imageCount: number;
    progress: number;
    createdAt: Date;
  }): Promise<Estimate> {
    if (g.status !== 'QUEUED' && g.status !== 'RUNNING')
      return { position: null, estimatedStartAt: null, estimatedFinishAt: null, waitingFor: null };
    let snap = this.snapshot && Date.now() - this.snapshot.at < PERIOD_MS ? this.snapshot : await this.read();
    if (g.status === 'QUEUED' && !snap.places.has(g.id) && snap.at < g.createdAt.getTime()) snap = await this.read();
    const load = snap.loads.get(g.model);
    const serving = (load?.workers ?? 0) > 0;
    // no worker serves the model: no start to estimate, whatever it drew lately
    const rate = serving ? (load?.imagesPerSecond ?? null) : null;
    const at = (images: number) => (rate ? new Date(snap.at + (1000 * images) / rate) : null);
    const remaining = Math.round(g.imageCount * (1 - g.progress));
    if (g.status === 'RUNNING')
      return { position: null, estimatedStartAt: null, estimatedFinishAt: at(remaining), waitingFor: null };
    const place = snap.places.get(g.id);
    const ahead = (place?.imagesAhead ?? 0) + (load?.runningImages ?? 0);
    return {
      position: place?.position ?? null,
      estimatedStartAt: at(ahead),
      estimatedFinishAt: at(ahead + remaining),
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
