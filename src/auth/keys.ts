/**
 * API keys: random 160-bit secrets shown once; the database keeps only their SHA-256 (a fast hash is
 * right for random keys: there is no dictionary to try). A request's key resolves to the key's id, which
 * owns every generation it creates. Each key also has the secret that signs its webhook messages.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../db/generated/client.ts';
import { newWebhookSecret } from '../webhooks/signing.ts';
import { notifyKeyRevoked } from '../events/notify.ts';
import { cancelUnfinished } from '../queue/queue.ts';
import { lockOwner } from '../generations/admission.ts';

const PREFIX = 'gnv_';

export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export async function createApiKey(
  prisma: PrismaClient,
  name: string,
  limits: Partial<KeyLimits> = {},
): Promise<{ id: string; key: string; webhookSecret: string }> {
  if (!name.trim()) throw new Error('a key needs a --name');
  const key = PREFIX + randomBytes(20).toString('base64url');
  const webhookSecret = newWebhookSecret();
  // with its limits in the one insert: a key is made whole, or not at all (its secret is shown only once)
  const row = await prisma.apiKey.create({
    data: { name: name.trim(), keyHash: hashKey(key), webhookSecret, ...limits },
  });
  return { id: row.id, key, webhookSecret };
}

/**
 * A new webhook signing secret for a key; messages are signed with the old one too for 24 hours
 * (src/webhooks/deliveries.ts), so receivers can switch without dropping any. Null if no such unrevoked key.
 */
export async function rotateWebhookSecret(prisma: PrismaClient, id: string): Promise<string | null> {
  const webhookSecret = newWebhookSecret();
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    UPDATE "ApiKey" SET "previousWebhookSecret" = "webhookSecret", "webhookSecret" = ${webhookSecret},
           "webhookSecretRotatedAt" = now()
     WHERE "id" = ${id}::uuid AND "revokedAt" IS NULL
    RETURNING "id"`;
  return rows.length === 1 ? webhookSecret : null;
}

/**
 * Revokes a key by id: its requests are UNAUTHENTICATED from now on (one authenticated before but not yet
 * admitted too) and its open sockets close at once (every API
 * instance is told by a NOTIFY). Its unfinished generations are canceled (no key can read them any more: a leaked
 * key's work stops drawing) and its webhook messages not sent yet are dropped (FAILED, saying why).
 */
export function revokeApiKey(prisma: PrismaClient, id: string): Promise<boolean> {
  return prisma.$transaction(async (tx) => {
    // a request being admitted for the key now commits first (and is canceled below), or sees it revoked
    await lockOwner(tx, id);
    const { count } = await tx.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
    if (count === 0) return false;
    await cancelUnfinished(tx, id);
    // after the cancel, whose COMPLETED messages its trigger has just made; one claimed now is left to its sender,
    // which reads the key again just before its POST (holdForSending) and sends nothing
    await tx.$executeRaw`
      UPDATE "WebhookDelivery" d SET "status" = 'FAILED', "lastError" = 'not sent: the API key was revoked'
        FROM "Generation" g
       WHERE g."id" = d."generationId" AND g."apiKeyId" = ${id}::uuid AND d."status" = 'PENDING'
         AND (d."lockedUntil" IS NULL OR d."lockedUntil" < now())`;
    await notifyKeyRevoked(tx, id);
    return true;
  });
}

/** The id of a valid, unrevoked key, or null. */
export async function keyOwner(prisma: PrismaClient, key: string): Promise<string | null> {
  if (!key.startsWith(PREFIX) || key.length > 100) return null;
  const row = await prisma.apiKey.findUnique({
    where: { keyHash: hashKey(key) },
    select: { id: true, revokedAt: true },
  });
  return row && !row.revokedAt ? row.id : null;
}

/** Which of `keys` are valid and unrevoked, in one read. */
export async function validKeys(prisma: PrismaClient, keys: string[]): Promise<Set<string>> {
  const byHash = new Map(keys.map((k) => [hashKey(k), k]));
  const rows = await prisma.apiKey.findMany({
    where: { keyHash: { in: [...byHash.keys()] }, revokedAt: null },
    select: { keyHash: true },
  });
  return new Set(rows.map((r) => byHash.get(r.keyHash)!));
}

/** The key in an `Authorization: Bearer <key>` value (HTTP header or graphql-ws connection_init). */
export function bearer(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m ? m[1] : null;
}

export interface KeyLimits {
  rateLimitPerMinute: number | null;
  queueLimit: number | null;
  imagesPerDay: number | null;
}

export interface KeyRow extends KeyLimits {
  id: string;
  name: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** Every key, oldest first, without secrets. */
export const listApiKeys = (prisma: PrismaClient): Promise<KeyRow[]> =>
  prisma.apiKey.findMany({
    select: {
      id: true,
      name: true,
      createdAt: true,
      revokedAt: true,
      rateLimitPerMinute: true,
      queueLimit: true,
      imagesPerDay: true,
    },
    orderBy: { createdAt: 'asc' },
  });

/** The id of the one unrevoked key with this name; throws when there is none or more than one. */
export async function keyIdByName(prisma: PrismaClient, name: string): Promise<string> {
  const rows = await prisma.apiKey.findMany({ where: { name, revokedAt: null }, select: { id: true } });
  if (rows.length !== 1)
    throw new Error(
      rows.length === 0
        ? `no unrevoked API key named "${name}"`
        : `${rows.length} keys are named "${name}" (${rows.map((r) => r.id).join(', ')}): use --id`,
    );
  return rows[0].id;
}

/** Sets a key's own limits (a null field: the server's default again); false if no such unrevoked key. */
export async function setKeyLimits(prisma: PrismaClient, id: string, limits: Partial<KeyLimits>): Promise<boolean> {
  const { count } = await prisma.apiKey.updateMany({ where: { id, revokedAt: null }, data: limits });
  return count === 1;
}
