/**
 * Standard Webhooks signatures (standardwebhooks.com): the secret is `whsec_` + base64 of random bytes;
 * each message is signed as HMAC-SHA256(secret bytes, `${id}.${timestamp}.${body}`), sent as
 * `webhook-signature: v1,<base64>`, one such entry per secret (space-separated) while a rotated-out secret
 * is still honoured. Receivers verify with any Standard Webhooks library.
 */
import { createHmac, randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';

/** A new secret: 32 random bytes. */
export const newWebhookSecret = (): string => PREFIX + randomBytes(32).toString('base64');

export function signatureHeader(secrets: string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
      return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
    })
    .join(' ');
}
