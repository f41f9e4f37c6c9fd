/**
 * Forwards Postgres notifications to the GraphQL pubsub of this API instance, so a subscriber sees what
 * any worker did on any machine; and lets a subscription watch one generation from the moment it asks.
 */
import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import type { Database } from '../db/database.ts';
import { EVERY_OWNER, type OwnerPages } from '../generations/owner-pages.ts';
import { CHANNELS, RESYNC_TOPIC, generationTopic } from './topics.ts';

export type GenerationPubSub = ReturnType<typeof createGenerationPubSub>;

export function createGenerationPubSub() {
  // one listener per subscription on a topic: thousands of watchers of one generation are normal
  const eventTarget = new EventTarget();
  setMaxListeners(0, eventTarget);
  return Object.assign(createPubSub<Record<string, [string]>>({ eventTarget }), {
    eventTarget,
    /** Per generation, the number of the last change this instance was told of (and when). */
    versions: new Map<string, { n: number; at: number }>(),
    changes: 0,
    /** Resyncs (the LISTEN connection came back): every generation may have changed. */
    epoch: 0,
  });
}

/** A generation changed: its version moves on (so reads after this are fresh), then its watchers wake. */
export function announce(pubsub: GenerationPubSub, id: string): void {
  pubsub.versions.set(id, { n: ++pubsub.changes, at: Date.now() });
  pubsub.publish(generationTopic(id), id);
}

/** The version of what this instance knows of a generation: equal versions, equal state. */
export const versionOf = (pubsub: GenerationPubSub, id: string): string =>
  `${pubsub.epoch}:${pubsub.versions.get(id)?.n ?? 0}`;

/**
 * Forgets versions of generations that have not changed for `ms`: a read at version 0 after that is as fresh
 * as any (change numbers are never reused, so no older read can carry the next one's version).
 */
export function forgetQuietVersions(pubsub: GenerationPubSub, ms: number): void {
  const before = Date.now() - ms;
  for (const [id, v] of pubsub.versions) if (v.at < before) pubsub.versions.delete(id);
}

/**
 * NOTIFYs on the generation channel become pubsub events; after the LISTEN connection comes back (a
 * Postgres restart), every watcher is told to re-read its generation: notifications sent while it was down
 * are lost, and a generation that finished then would leave its subscription open for ever.
 */
export async function bridgeNotifications(db: Database, pubsub: GenerationPubSub): Promise<() => Promise<void>> {
  const unlisten = await db.listen(CHANNELS.generation, (id) => announce(pubsub, id));
  const unhook = db.onReconnect(() => {
    pubsub.epoch++;
    pubsub.publish(RESYNC_TOPIC, '');
  });
  return async () => {
    unhook();
    await unlisten();
  };
}

/**
 * NOTIFYs on the owners channel (the owner_changes migration's triggers: an owner's generations were made, changed or
 * deleted) drop that owner's kept pages; after the LISTEN connection comes back, every owner's are dropped (what was
 * said while it was down is lost).
 */
export async function bridgeOwnerChanges(
  db: Database,
  pages: Pick<OwnerPages<unknown>, 'changed'>,
): Promise<() => Promise<void>> {
  const unlisten = await db.listen(CHANNELS.owners, (owner) =>
    pages.changed(owner === '*' ? EVERY_OWNER : owner === '' ? null : owner),
  );
  const unhook = db.onReconnect(() => pages.changed(EVERY_OWNER));
  return async () => {
    unhook();
    await unlisten();
  };
}

/**
 * Watches one generation: listening starts at this call (before the caller reads its state, so a change
 * in between is not missed); `changed()` resolves at the next change or resync (at once if one came), or when
 * the watch is closed (`closed` says which).
 */
export function watchGeneration(
  pubsub: GenerationPubSub,
  id: string,
): { changed(): Promise<void>; close(): void; readonly closed: boolean } {
  let pending = false;
  let closed = false;
  let wake: (() => void) | null = null;
  const onEvent = () => {
    pending = true;
    wake?.();
  };
  const topics = [generationTopic(id), RESYNC_TOPIC];
  for (const t of topics) pubsub.eventTarget.addEventListener(t, onEvent);
  return {
    changed: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          pending = false;
          wake = null;
          resolve();
        };
        if (pending || closed) done();
        else wake = done;
      }),
    get closed() {
      return closed;
    },
    close: () => {
      closed = true;
      for (const t of topics) pubsub.eventTarget.removeEventListener(t, onEvent);
      wake?.();
    },
  };
}
