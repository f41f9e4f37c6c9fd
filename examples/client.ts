/**
 * A small typed ganvas client: queries and mutations over fetch, live updates over graphql-ws, PNG
 * downloads. Types come from the schema (schema-types.ts). Copy it into your app, or use it as a guide.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type {
  DeleteGenerationsInput,
  GenerateImagesInput,
  Generation,
  GenerationConnection,
  Image,
  InterpolateCaptionsInput,
  InterpolateNoiseInput,
  ModelInfo,
  Quota,
  TransferStyleInput,
  UsageDay,
} from './schema-types.ts';

const FIELDS =
  'id kind status captions seed endSeed model error progress imageCount styleImageId idempotencyKey createdAt startedAt ' +
  'finishedAt queuePosition estimatedStartAt estimatedFinishAt waitingFor animationUrl ' +
  'images { id index url width height caption seed mix } ' +
  'webhook { url events deliveries { id event status attempts lastStatusCode lastError createdAt nextAttemptAt deliveredAt } }';

/**
 * Every error of this client: the GraphQL `extensions.code` (or the HTTP status; NETWORK when the server could
 * not be reached), and for RATE_LIMITED and SERVICE_UNAVAILABLE (or an HTTP 503's Retry-After) how long to wait.
 */
export class GanvasError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly retryAfterSeconds?: number,
    /** BAD_USER_INPUT's input field at fault, where there is one (`count`, `caption`, `image`...). */
    readonly field?: string,
  ) {
    super(`${message} (${code})`);
  }
}

type GraphQLErrorBody = {
  message: string;
  extensions?: { code?: string; retryAfterSeconds?: number; field?: string };
};
const fromGraphQL = (e: GraphQLErrorBody) =>
  new GanvasError(
    e.message,
    String(e.extensions?.code ?? 'ERROR'),
    e.extensions?.retryAfterSeconds,
    e.extensions?.field,
  );

/** An image in a webhook message: the GraphQL fields but its generation (the message's own). */
export type WebhookImage = Omit<Image, 'generation'>;

/** A generation as this client reads it: every field, its images without their back reference to it. */
export type ClientGeneration = Omit<Generation, 'images'> & { images: WebhookImage[] };
/** A page of generations as this client reads it. */
export type ClientConnection = Omit<GenerationConnection, 'edges'> & {
  edges: { cursor: string; node: ClientGeneration }[];
};

/** A webhook message's generation: the GraphQL fields but the live queue estimates and the webhook. */
export type WebhookGeneration = Omit<
  Generation,
  'queuePosition' | 'waitingFor' | 'estimatedStartAt' | 'estimatedFinishAt' | 'webhook' | 'images'
> & { images: WebhookImage[] };

/**
 * What a webhook message carries (webhook.events of a request): the generation, and the new image for IMAGE.
 * `type` and `timestamp` say what happened and when; `generation` is as it was when the message was first sent,
 * which may be later (a fast generation's `generation.started` can already say SUCCEEDED).
 */
export interface WebhookMessage {
  type: 'generation.started' | 'generation.image' | 'generation.completed';
  timestamp: string;
  data: { generation: WebhookGeneration; image?: WebhookImage };
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

/**
 * graphql-ws reports a closed socket as its close event; ganvas's close reasons start with the error code
 * ("UNAUTHENTICATED: the API key is not valid", close code 4401).
 */
function socketError(e: unknown): Error {
  if (e instanceof Error) return e;
  // an operation's errors (a refused subscription, a query over the limits): GraphQL errors with their codes
  if (Array.isArray(e) && e.length) return fromGraphQL((e as GraphQLErrorBody[])[0]);
  // the socket could not be opened (the server down, a refused upgrade): the cause is in the event's message
  if ((e as { type?: string }).type === 'error')
    return new GanvasError(
      `the connection failed: ${(e as { message?: string }).message ?? 'no reason given'}`,
      'NETWORK',
    );
  const { code, reason } = e as { code?: number; reason?: string };
  const coded = /^([A-Z_]+): (.+)$/.exec(reason ?? '');
  if (coded) return new GanvasError(coded[2], coded[1]);
  return new GanvasError(`the connection closed (${code ?? 'no code'}${reason ? `: ${reason}` : ''})`, 'ERROR');
}

/** The errors after which a creating request is sent again with its idempotency key (it may have been admitted). */
const RETRIED = ['NETWORK', 'SERVICE_UNAVAILABLE', '502', '503', '504'];
const RETRIES = 5;
/** Times the WebSocket is opened again before follows reject: at most ~6 s apart, about two and a half minutes. */
const RECONNECTS = 30;
/**
 * Times in a row a socket refused at the key's socket limit (4403) is tried again, about ten seconds: one of the
 * key's other sockets may close meanwhile, but an app that holds them all (a client per request) is told at once.
 */
const AT_SOCKET_LIMIT = 3;

export class GanvasClient {
  private readonly ws: Client;

  private readonly baseUrl: string;

  /** 4403s since the socket last opened (AT_SOCKET_LIMIT). */
  private refusedAtLimit = 0;

  /** `baseUrl` like http://localhost:4000; `apiKey` is sent as a Bearer token where the server asks for one. */
  constructor(
    baseUrl: string,
    private readonly apiKey?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, ''); // its paths are appended: http://host/ would ask for //graphql
    this.ws = createClient({
      url: `${this.baseUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: apiKey ? { authorization: `Bearer ${apiKey}` } : undefined,
      // graphql-ws retries only a socket that closed; one that could not open (a server restarting) too, and
      // follows resume with the generation's current state; the key's socket limit only a few times
      shouldRetry: (e) => (e as { code?: number }).code !== 4403 || ++this.refusedAtLimit <= AT_SOCKET_LIMIT,
      on: { connected: () => (this.refusedAtLimit = 0) },
      // for about two and a half minutes, where graphql-ws's own 5 tries at a doubling wait give up after half of one
      retryAttempts: RECONNECTS,
      retryWait: (retries) =>
        new Promise((r) => setTimeout(r, Math.min(1_000 * 2 ** retries, 5_000) + Math.random() * 1_000)),
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
    }).catch((err: unknown) => {
      throw new GanvasError(`${this.baseUrl} could not be reached: ${(err as Error).cause ?? err}`, 'NETWORK');
    });
    // GraphQL answers JSON, errors too; anything else (a proxy's 502 page, open mode's refusal) is the HTTP status
    if (!res.headers.get('content-type')?.includes('json'))
      throw new GanvasError(
        `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`,
        String(res.status),
        Number(res.headers.get('retry-after')) || undefined,
      );
    const body = (await res.json().catch((err: unknown) => {
      throw new GanvasError(`the answer from ${this.baseUrl} was cut off: ${(err as Error).message}`, 'NETWORK');
    })) as { data?: T; errors?: GraphQLErrorBody[] };
    if (body.errors?.length) throw fromGraphQL(body.errors[0]);
    // JSON that is not GraphQL's (a gateway's own error page)
    if (!res.ok || body.data == null)
      throw new GanvasError(`HTTP ${res.status}: ${JSON.stringify(body).slice(0, 200)}`, String(res.status));
    return body.data;
  }

  /** Sends `mutation(<variables>) { <field>(<arguments>) { ...the generation } }` and returns the generation. */
  private async mutate(field: string, variables: string, args: string, values: object): Promise<ClientGeneration> {
    const doc = `mutation(${variables}) { ${field}(${args}) { ${FIELDS} } }`;
    return (await this.request<Record<string, ClientGeneration>>(doc, values as Record<string, unknown>))[field];
  }

  /**
   * A creating mutation with an idempotency key (the input's, or a new UUID), sent again with the same key when the
   * server could not be reached, could not reach its database (SERVICE_UNAVAILABLE) or a gateway answered 502-504
   * (up to 5 more times, after 0.5, 1, 2, 4 and 8 s, or the server's retryAfterSeconds / Retry-After where longer:
   * about 15 s, a database's restart): a request admitted before its answer was lost makes no second generation,
   * and the retry answers the first one's.
   */
  private async create<I extends { idempotencyKey?: string | null }>(
    field: string,
    type: string,
    input: I,
  ): Promise<ClientGeneration> {
    const i = { ...input, idempotencyKey: input.idempotencyKey ?? randomUUID() };
    for (let attempt = 0; ; attempt++)
      try {
        return await this.mutate(field, `$i: ${type}!`, 'input: $i', { i });
      } catch (err) {
        if (attempt === RETRIES || !(err instanceof GanvasError) || !RETRIED.includes(err.code)) throw err;
        const wait = Math.max(500 * 2 ** attempt, (err.retryAfterSeconds ?? 0) * 1000);
        await new Promise((r) => setTimeout(r, wait));
      }
  }

  generateImages(input: GenerateImagesInput): Promise<ClientGeneration> {
    return this.create('generateImages', 'GenerateImagesInput', input);
  }

  interpolateCaptions(input: InterpolateCaptionsInput): Promise<ClientGeneration> {
    return this.create('interpolateCaptions', 'InterpolateCaptionsInput', input);
  }

  interpolateNoise(input: InterpolateNoiseInput): Promise<ClientGeneration> {
    return this.create('interpolateNoise', 'InterpolateNoiseInput', input);
  }

  transferStyle(input: TransferStyleInput): Promise<ClientGeneration> {
    return this.create('transferStyle', 'TransferStyleInput', input);
  }

  cancel(id: string): Promise<ClientGeneration> {
    return this.mutate('cancelGeneration', '$id: ID!', 'id: $id', { id });
  }

  async generation(id: string): Promise<ClientGeneration> {
    return (
      await this.request<{ generation: ClientGeneration }>(`query($id: ID!) { generation(id: $id) { ${FIELDS} } }`, {
        id,
      })
    ).generation;
  }

  /**
   * One page of your generations, newest first; pass `after: page.pageInfo.endCursor` for the next. With the
   * same filter, it lists what deleteGenerations would delete.
   */
  async generations(
    args: DeleteGenerationsInput & { first?: number; after?: string | null } = {},
  ): Promise<ClientConnection> {
    return (
      await this.request<{ generations: ClientConnection }>(
        `query($first: Int, $after: String, $status: GenerationStatus, $kind: GenerationKind, $before: DateTime) {
          generations(first: $first, after: $after, status: $status, kind: $kind, createdBefore: $before) {
            edges { cursor node { ${FIELDS} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
        { first: args.first, after: args.after, status: args.status, kind: args.kind, before: args.createdBefore },
      )
    ).generations;
  }

  /** Every one of your generations that matches, page after page. */
  async *allGenerations(args: DeleteGenerationsInput = {}): AsyncGenerator<ClientGeneration> {
    let after: string | null = null;
    for (;;) {
      const page: ClientConnection = await this.generations({ ...args, first: 100, after });
      for (const edge of page.edges) yield edge.node;
      if (!page.pageInfo.hasNextPage) return;
      after = page.pageInfo.endCursor;
    }
  }

  /** Deletes a generation and its images; returns its id. */
  async deleteGeneration(id: string): Promise<string> {
    return (
      await this.request<{ deleteGeneration: string }>('mutation($id: ID!) { deleteGeneration(id: $id) }', { id })
    ).deleteGeneration;
  }

  /** Deletes your generations that match every field of `filter`; returns how many. */
  async deleteGenerations(filter: DeleteGenerationsInput): Promise<number> {
    return (
      await this.request<{ deleteGenerations: number }>(
        'mutation($f: DeleteGenerationsInput!) { deleteGenerations(filter: $f) }',
        { f: filter },
      )
    ).deleteGenerations;
  }

  /** Your generations and images per UTC day, kind and model (default: the last 30 days). */
  async usage(from?: Date, to?: Date): Promise<UsageDay[]> {
    return (
      await this.request<{ usage: UsageDay[] }>(
        'query($from: DateTime, $to: DateTime) { usage(from: $from, to: $to) { day kind model generations images } }',
        { from: from?.toISOString(), to: to?.toISOString() },
      )
    ).usage;
  }

  /** The model catalog, default first, with how many workers serve each now. */
  async models(served = false): Promise<ModelInfo[]> {
    return (
      await this.request<{ models: ModelInfo[] }>(
        'query($s: Boolean!) { models(served: $s) { name imageSize variant isDefault untrained trainingSteps summary captionCharacters workers } }',
        { s: served },
      )
    ).models;
  }

  /** Your limits and what you use of each now. */
  async quota(): Promise<Quota> {
    return (
      await this.request<{ quota: Quota }>(
        '{ quota { perMinute requestsLastMinute queued queuedNow imagesPerDay imagesLast24h } }',
      )
    ).quota;
  }

  /** The secret this key's webhook messages are signed with, for verifyWebhook. */
  async webhookSecret(): Promise<string> {
    return (await this.request<{ webhookSecret: string }>('{ webhookSecret }')).webhookSecret;
  }

  /**
   * Follows a generation live until it finishes; `onUpdate` sees every state. Resolves with the final one. `signal`
   * stops following (the promise rejects with its reason); an `onUpdate` that throws stops this follow only.
   */
  follow(
    id: string,
    onUpdate: (g: ClientGeneration) => void = () => {},
    signal?: AbortSignal,
  ): Promise<ClientGeneration> {
    return new Promise((resolve, reject) => {
      let last: ClientGeneration | null = null;
      // however it ends, `signal` (which may stop many follows) no longer listens for this one
      const done = () => signal?.removeEventListener('abort', aborted);
      const stop = (err: unknown) => {
        done();
        unsubscribe();
        reject(err);
      };
      const aborted = () => stop(signal!.reason);
      const unsubscribe = this.ws.subscribe<{ generationUpdated: ClientGeneration }>(
        { query: `subscription($id: ID!) { generationUpdated(id: $id) { ${FIELDS} } }`, variables: { id } },
        {
          next: (r) => {
            if (r.errors?.length) return stop(fromGraphQL(r.errors[0] as GraphQLErrorBody));
            last = r.data!.generationUpdated;
            try {
              onUpdate(last);
            } catch (err) {
              stop(err); // thrown inside graphql-ws, it would close the socket and every other follow with it
            }
          },
          error: (e) => {
            done();
            reject(socketError(e));
          },
          complete: () => {
            done();
            if (last) resolve(last);
            else reject(new Error('subscription ended without an update'));
          },
        },
      );
      signal?.addEventListener('abort', aborted, { once: true });
      if (signal?.aborted) aborted();
    });
  }

  /**
   * The PNG bytes of an image of a generation. Its url's token is the permission: no API key is sent (a webhook's
   * absolute url may name another host, a CDN's, which should not see the key).
   */
  async download(url: string): Promise<Buffer> {
    const res = await fetch(new URL(url, this.baseUrl));
    if (!res.ok) throw new GanvasError(`download of ${url} failed`, String(res.status));
    return Buffer.from(await res.arrayBuffer());
  }

  close(): Promise<void> {
    return this.ws.dispose() as Promise<void>;
  }
}
