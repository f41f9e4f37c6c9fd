/**
 * Where ganvas sends NOTIFY, but where a statement sends its own: a request's admission (the `ganvas_admit`
 * function of the admission migration notifies both channels; src/generations/admission.ts), a pass's start
 * (src/gpu-worker/store.ts), a cancel and a worker's hand-back of its jobs (src/queue/queue.ts). Inside a
 * transaction a notification goes out at commit (and not at all on rollback), so listeners never read a state that
 * is not there yet.
 */
import type { Prisma } from '../db/generated/client.ts';
import { CHANNELS } from './topics.ts';

type Sql = Pick<Prisma.TransactionClient, '$executeRaw'>;

/** A generation's status, progress or images changed: every API instance re-reads it for its subscribers. */
export const notifyGeneration = (db: Sql, id: string) =>
  db.$executeRaw`SELECT pg_notify(${CHANNELS.generation}, ${id})`;

/** Several generations changed at once (started, deleted): one statement. */
export const notifyGenerations = (db: Sql, ids: string[]) =>
  db.$executeRaw`SELECT pg_notify(${CHANNELS.generation}, id) FROM unnest(${ids}::text[]) AS id`;

/** An API key was revoked: every API instance forgets the keys it kept (src/auth/key-owners.ts). */
export const notifyKeyRevoked = (db: Sql, id: string) => db.$executeRaw`SELECT pg_notify(${CHANNELS.keys}, ${id})`;
