/**
 * Forwards Postgres notifications to the GraphQL pubsub of this API instance, so a subscriber sees what
 * any worker did on any machine.
 */
import { setMaxListeners } from 'node:events';
import { createPubSub } from '@graphql-yoga/subscription';
import type { Database } from '../db/database.ts';
import { CHANNELS, generationTopic } from './topics.ts';

export type GenerationPubSub = ReturnType<typeof createGenerationPubSub>;

export function createGenerationPubSub() {
  // one listener per subscription on a topic: thousands of watchers of one generation are normal
  const eventTarget = new EventTarget();
  setMaxListeners(0, eventTarget);
  return createPubSub<Record<string, [string]>>({ eventTarget });
}

export async function bridgeNotifications(db: Database, pubsub: GenerationPubSub): Promise<() => Promise<void>> {
  return db.listen(CHANNELS.generation, (id) => pubsub.publish(generationTopic(id), id));
}
