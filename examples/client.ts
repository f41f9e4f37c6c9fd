/**
 * A small typed ganvas client: queries and mutations over fetch, live updates over graphql-ws, PNG
 * downloads. Types come from the schema (schema-types.ts). Copy it into your app, or use it as a guide.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { GenerateImagesInput, Generation, InterpolateCaptionsInput, TransferStyleInput } from './schema-types.ts';

const FIELDS =
  'id kind status captions seed model error progress createdAt finishedAt images { id index url width height caption seed mix }';

export class GanvasError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(`${message} (${code})`);
  }
}

/** What a webhook message carries (webhook.events of a request): the generation, and the new image for IMAGE. */
export interface WebhookMessage {
  type: 'generation.started' | 'generation.image' | 'generation.completed';
  timestamp: string;
  data: { generation: Generation; image?: Generation['images'][number] };
}

/**
 * Checks a webhook request as Standard Webhooks defines it and returns its message; throws if no signature
 * matches `secret` (Query.webhookSecret) or the timestamp is more than `toleranceSeconds` away (a replay).
 * `body` must be the raw request body, as received.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  toleranceSeconds = 300,
): WebhookMessage {
  const [id, timestamp, signatures] = ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) =>
    String(headers[h] ?? ''),
  );
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) throw new Error('webhook timestamp too old');
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = Buffer.from(createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64'));
  const ok = signatures.split(' ').some((s) => {
    const given = Buffer.from(s.replace(/^v1,/, ''));
    return s.startsWith('v1,') && given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!ok) throw new Error('webhook signature does not match');
  return JSON.parse(body) as WebhookMessage;
}

export class GanvasClient {
  private readonly ws: Client;

  /** `baseUrl` like http://localhost:4000; `apiKey` is sent as a Bearer token where the server asks for one. */
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey?: string,
  ) {
    this.ws = createClient({
      url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: apiKey ? { authorization: `Bearer ${apiKey}` } : undefined,
    });
  }

  async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await fetch(`${this.baseUrl}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
    if (body.errors?.length) throw new GanvasError(body.errors[0].message, body.errors[0].extensions?.code ?? 'ERROR');
    return body.data!;
  }

  async generateImages(input: GenerateImagesInput): Promise<Generation> {
    return (
      await this.request<{ generateImages: Generation }>(
        `mutation($i: GenerateImagesInput!) { generateImages(input: $i) { ${FIELDS} } }`,
        { i: input },
      )
    ).generateImages;
  }

  async interpolateCaptions(input: InterpolateCaptionsInput): Promise<Generation> {
    return (
      await this.request<{ interpolateCaptions: Generation }>(
        `mutation($i: InterpolateCaptionsInput!) { interpolateCaptions(input: $i) { ${FIELDS} } }`,
        { i: input },
      )
    ).interpolateCaptions;
  }

  async transferStyle(input: TransferStyleInput): Promise<Generation> {
    return (
      await this.request<{ transferStyle: Generation }>(
        `mutation($i: TransferStyleInput!) { transferStyle(input: $i) { ${FIELDS} } }`,
        { i: input },
      )
    ).transferStyle;
  }

  /** The secret this key's webhook messages are signed with, for verifyWebhook. */
  async webhookSecret(): Promise<string> {
    return (await this.request<{ webhookSecret: string }>('{ webhookSecret }')).webhookSecret;
  }

  /** Follows a generation live until it finishes; `onUpdate` sees every state. Resolves with the final one. */
  follow(id: string, onUpdate: (g: Generation) => void = () => {}): Promise<Generation> {
    return new Promise((resolve, reject) => {
      let last: Generation | null = null;
      this.ws.subscribe<{ generationUpdated: Generation }>(
        { query: `subscription($id: ID!) { generationUpdated(id: $id) { ${FIELDS} } }`, variables: { id } },
        {
          next: (r) => {
            if (r.errors?.length)
              return reject(new GanvasError(r.errors[0].message, String(r.errors[0].extensions?.code ?? 'ERROR')));
            last = r.data!.generationUpdated;
            onUpdate(last);
          },
          error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
          complete: () => (last ? resolve(last) : reject(new Error('subscription ended without an update'))),
        },
      );
    });
  }

  /** The PNG bytes of an image of a generation. */
  async download(url: string): Promise<Buffer> {
    const res = await fetch(new URL(url, this.baseUrl), {
      headers: this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {},
    });
    if (!res.ok) throw new GanvasError(`download of ${url} failed`, String(res.status));
    return Buffer.from(await res.arrayBuffer());
  }

  close(): Promise<void> {
    return this.ws.dispose() as Promise<void>;
  }
}
