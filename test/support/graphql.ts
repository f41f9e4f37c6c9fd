/** A GraphQL client for tests: queries over HTTP with fetch, subscriptions over graphql-ws. */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** What ganvas's errors carry beside their message (README, "Every error at a glance"). */
export interface ErrorExtensions {
  code?: string;
  retryAfterSeconds?: number;
  field?: string;
  generationId?: string;
}

export interface GqlResult<T = Record<string, any>> {
  data?: T;
  errors?: { message: string; extensions?: ErrorExtensions }[];
}

export async function gql<T = Record<string, any>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  key?: string,
): Promise<GqlResult<T>> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(key ? { authorization: `Bearer ${key}` } : {}),
  };
  // a deadline: a stalled request fails the test that made it instead of holding it for fetch's 300 s
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(60_000),
  });
  return (await res.json()) as GqlResult<T>;
}

/** The first error code of a result, or undefined. */
export const codeOf = (r: GqlResult): string | undefined => r.errors?.[0]?.extensions?.code;

export function wsClient(httpUrl: string, key?: string): Client {
  return createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: key ? { authorization: `Bearer ${key}` } : undefined,
  });
}

/** Collects every event of a subscription until the server completes it (or errors, or times out). */
export function collect<T = Record<string, any>>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  timeoutMs = 60_000,
): Promise<GqlResult<T>[]> {
  return new Promise((resolve, reject) => {
    const events: GqlResult<T>[] = [];
    const timer = setTimeout(() => {
      dispose();
      reject(new Error(`subscription not complete after ${timeoutMs} ms; got ${events.length} events`));
    }, timeoutMs);
    const dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (e) => void events.push(e as GqlResult<T>),
        error: (err) => {
          clearTimeout(timer);
          if (Array.isArray(err)) resolve([...events, { errors: err as GqlResult['errors'] }]);
          else reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
        },
        complete: () => {
          clearTimeout(timer);
          resolve(events);
        },
      },
    );
  });
}
