/**
 * Forwards Postgres notifications to the GraphQL pubsub of this API instance, so a subscriber sees what
 * any worker did on any machine.
 */
import { createPubSub } from '@graphql-yoga/subscription';
import type { Database } from '../db/database.ts';
import { CHANNELS, generationTopic } from './topics.ts';

export type GenerationPubSub = ReturnType<typeof createGenerationPubSub>;

export function createGenerationPubSub() {
  return createPubSub<Record<string, [string]>>();
}

export async function bridgeNotifications(db: Database, pubsub: GenerationPubSub): Promise<() => Promise<void>> {
  return db.listen(CHANNELS.generation, (id) => pubsub.publish(generationTopic(id), id));
}
