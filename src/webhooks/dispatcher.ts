/**
 * Sends webhook messages: every API process runs one. It claims due deliveries, signs each (Standard
 * Webhooks, signing.ts) and POSTs it to a checked address (target.ts), the answer's status read (not its body),
 * no redirect followed, within WEBHOOK_TIMEOUT_SECONDS. A 2xx answer delivers it; anything else is retried
 * with exponential backoff (WEBHOOK_BACKOFF_SECONDS, doubling, at most an hour apart) until
 * WEBHOOK_RETRY_FOR_SECONDS after the event, then it is FAILED. One generation's messages go one at a time,
 * in order.
 */
import type { LookupAddress } from 'node:dns';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { PrismaClient } from '../db/generated/client.ts';
import { logFailure } from '../db/unavailable.ts';
import { messageOf } from '../errors.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';
import {
  type ClaimedDelivery,
  claimDeliveries,
  holdForSending,
  messageBody,
  recordDelivered,
  recordFailed,
  signingSecrets,
} from './deliveries.ts';
import { Doze } from '../events/doze.ts';
import { signatureHeader } from './signing.ts';
import { type Target, resolveTarget } from './target.ts';

export interface WebhookSettings {
  /** Send to private and loopback addresses too (WEBHOOK_ALLOW_PRIVATE=1). */
  allowPrivate: boolean;
  timeoutSeconds: number;
  /** Delay before the first retry; it doubles with each one, up to MAX_BACKOFF_SECONDS. */
  backoffSeconds: number;
  /** After this long from the event, a message that could not be delivered is FAILED. */
  retryForSeconds: number;
  /** Where receivers reach this API (image URLs in messages); null: the API's own address. */
  publicUrl: string | null;
}

const MAX_BACKOFF_SECONDS = 3600;
const IN_FLIGHT = 32;
const PER_KEY = 8;
const IDLE_POLL_MS = 500;

type Outcome = { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string };

/** A lookup that answers with the addresses already checked: the connection goes exactly there. */
const pinned =
  (addresses: LookupAddress[]): LookupFunction =>
  (_host, options, callback) => {
    if (options.all) (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
    else callback(null, addresses[0].address, addresses[0].family);
  };

/**
 * POSTs `body`; the answer is its status line, taken as soon as it comes: the body is not read (the connection is
 * closed then, so a receiver that holds its body past the timeout has still taken the message, and holds no
 * socket). Never follows a redirect.
 */
function post(target: Target, body: string, headers: Record<string, string>, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const request = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(
      target.url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: pinned(target.addresses),
        agent: false,
      },
      (res: IncomingMessage) => {
        clearTimeout(timer);
        const statusCode = res.statusCode ?? 0;
        res.destroy();
        resolve(
          statusCode >= 200 && statusCode < 300
            ? { ok: true, statusCode }
            : {
                ok: false,
                statusCode,
                error:
                  statusCode >= 300 && statusCode < 400
                    ? `answered ${statusCode} (redirects are not followed)`
                    : `answered ${statusCode}`,
              },
        );
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, statusCode: null, error: messageOf(err) }); // nothing, once the status has come
    });
    req.end(body);
  });
}

export class Dispatcher {
  private stopped = false;
  private readonly doze = new Doze();
  private readonly loop: Promise<void>;
  /** A claim's time: the POST's limit and 30 s to record its result (renewed just before the POST). */
  private readonly lease: number;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly settings: WebhookSettings,
    /** Absolute origin for the URLs in messages (settings.publicUrl, or the API's own). */
    private readonly baseUrl: string,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.lease = settings.timeoutSeconds + 30;
    this.loop = this.run();
  }

  /**
   * Keeps up to IN_FLIGHT messages on their way, at most PER_KEY of one API key's: claims as many as there is
   * room for whenever one ends (or every IDLE_POLL_MS), so a receiver that takes the whole timeout holds up only
   * its own key's messages.
   */
  private async run(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    while (!this.stopped) {
      this.doze.turn();
      const room = IN_FLIGHT - inFlight.size;
      let claimed: ClaimedDelivery[] = [];
      if (room > 0)
        try {
          // one message per generation (claimDeliveries), and none of a generation whose message is on its way
          claimed = await claimDeliveries(this.prisma, room, this.lease, PER_KEY);
        } catch (err) {
          if (!this.stopped) logFailure(this.log, 'webhooks: claiming deliveries failed', err);
        }
      for (const d of claimed) {
        const sending: Promise<void> = this.deliver(d).finally(() => {
          inFlight.delete(sending);
          this.doze.wake(); // a slot is free, and the generation's next message may be due
        });
        inFlight.add(sending);
      }
      if (claimed.length === room && room > 0) continue; // there may be more due
      await this.doze.sleep(IDLE_POLL_MS);
    }
    await Promise.all(inFlight);
  }

  private async deliver(d: ClaimedDelivery): Promise<void> {
    const log = this.log.child({ delivery: d.id, generation: d.generationId, attempt: d.attempts });
    const to = originOf(d.url); // not its path or query, which may carry the receiver's own secret
    try {
      const outcome = await this.attempt(d);
      if (outcome === 'lost') {
        log.warn(`webhook ${d.event} to ${to}: not sent, its claim ran out first; it goes in a later claim`);
        return;
      }
      if (outcome.ok) {
        await recordDelivered(this.prisma, d, outcome.statusCode);
        this.metrics.webhookAttempts.inc({ result: 'delivered' });
        log.info(`webhook ${d.event} delivered to ${to} (${outcome.statusCode})`);
        return;
      }
      const delay = Math.min(this.settings.backoffSeconds * 2 ** (d.attempts - 1), MAX_BACKOFF_SECONDS);
      const status = await recordFailed(this.prisma, d, outcome, delay, this.settings.retryForSeconds);
      // none: the message is gone (its generation deleted meanwhile) or no longer this attempt's: nothing is retried
      if (status === null) {
        log.info(`webhook ${d.event} to ${to}: ${outcome.error}; not retried, its generation was deleted meanwhile`);
        return;
      }
      this.metrics.webhookAttempts.inc({ result: status === 'FAILED' ? 'gave_up' : 'retry' });
      log.warn(
        status === 'FAILED'
          ? `webhook ${d.event} to ${to} failed for good: ${outcome.error}`
          : `webhook ${d.event} to ${to}: ${outcome.error}; again in ${delay} s`,
      );
    } catch (err) {
      // the database is unreachable: the lease runs out and the message is claimed again
      logFailure(log, 'webhooks: recording a delivery failed', err);
    }
  }

  /** One POST of a claimed message, or 'lost' where its claim ran out before it (nothing to record then). */
  private async attempt(d: ClaimedDelivery): Promise<Outcome | 'lost'> {
    let target: Target;
    try {
      target = await resolveTarget(d.url, this.settings.allowPrivate);
    } catch (err) {
      return { ok: false, statusCode: null, error: `the URL ${messageOf(err)}` };
    }
    const body = await messageBody(this.prisma, d, this.baseUrl);
    if (body === null) return { ok: false, statusCode: null, error: 'the generation was deleted' };
    const hold = await holdForSending(this.prisma, d, this.lease);
    if (hold === 'lost') return hold;
    if (hold === 'revoked') return { ok: false, statusCode: null, error: 'not sent' }; // recordFailed says why
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'ganvas-webhooks/1',
      'webhook-id': d.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(await signingSecrets(this.prisma, d.apiKeyId), d.id, timestamp, body),
    };
    return post(target, body, headers, this.settings.timeoutSeconds * 1000);
  }

  /** Stops claiming and waits for the messages being sent (each ends within the timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.doze.wake();
    await this.loop;
  }
}

/** A webhook URL's scheme, host and port, for logs. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a URL)';
  }
}
