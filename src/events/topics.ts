/**
 * Every cross-process event of ganvas, with its payload. Workers and API instances meet only through
 * Postgres: NOTIFY on a channel (carrying ids), LISTEN on every API instance and worker.
 */
export const CHANNELS = {
  /** A generation's status, progress or images changed. Payload: the generation id. */
  generation: 'ganvas_generation',
  /** New work was queued. Payload: the generation id. Workers wake up and claim. */
  jobs: 'ganvas_jobs',
  /**
   * Generations of an owner were made, changed or deleted (sent by the owner_changes migration's triggers, once per
   * owner a statement touched). Payload: the API key's id; '' for open mode's owner; '*' for every owner (TRUNCATE).
   */
  owners: 'ganvas_owners',
  /** An API key was revoked. Payload: its id. API instances forget the keys they kept and close its sockets. */
  keys: 'ganvas_keys',
} as const;

/** The in-process pubsub topic for one generation's updates (GraphQL subscriptions). */
export const generationTopic = (id: string): string => `generation:${id}`;

/** In-process topic: the LISTEN connection came back; every watcher re-reads its generation. */
export const RESYNC_TOPIC = 'generation:resync';
