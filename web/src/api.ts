/** The studio's GraphQL client: queries and mutations over fetch, live updates over graphql-ws. */
import { createClient } from 'graphql-ws';
import type * as Schema from '../../examples/schema-types.ts';

/** What the studio reads of the schema's types (generated: a schema change fails `tsc -p web`). */
export type Image = Pick<Schema.Image, 'id' | 'index' | 'url' | 'caption' | 'seed' | 'mix'>;
export type Generation = Pick<
  Schema.Generation,
  | 'id'
  | 'kind'
  | 'status'
  | 'captions'
  | 'seed'
  | 'endSeed'
  | 'progress'
  | 'error'
  | 'createdAt'
  | 'animationUrl'
  | 'queuePosition'
  | 'estimatedStartAt'
  | 'estimatedFinishAt'
  | 'waitingFor'
  | 'model'
> & { images: Image[] };

export const GENERATION_FIELDS =
  'id kind status captions seed endSeed progress error createdAt animationUrl queuePosition estimatedStartAt ' +
  'estimatedFinishAt waitingFor model images { id index url caption seed mix }';

/** The API key, where the server needs one (it does not on localhost); kept in this browser. */
export const apiKey = {
  get: () => localStorage.getItem('ganvas.apiKey') ?? '',
  set: (key: string) => localStorage.setItem('ganvas.apiKey', key.trim()),
};
const authHeader = (): Record<string, string> => (apiKey.get() ? { authorization: `Bearer ${apiKey.get()}` } : {});

/** An error from the API, in words a person can read, with its code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** BAD_USER_INPUT's input field at fault, where the API names one (extensions.field). */
    readonly field?: string,
  ) {
    super(message);
  }
}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeader() },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError('The ganvas API cannot be reached. Is the server running?', 'NETWORK');
  }
  const body = (await res.json().catch(() => ({}))) as {
    data?: T;
    errors?: { message: string; extensions?: { code?: string; field?: string } }[];
  };
  const [error] = body.errors ?? [];
  if (error) throw new ApiError(error.message, error.extensions?.code ?? 'ERROR', error.extensions?.field);
  if (!body.data) throw new ApiError(`The API answered ${res.status} without data.`, 'HTTP');
  return body.data;
}

const ws = createClient({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
  lazy: true,
  retryAttempts: 5,
  // a dropped network (a plain error event, not a close) is retried too; a subscription resumes with the current state
  shouldRetry: () => true,
  connectionParams: () => authHeader(),
});

/**
 * Why live updates stopped, in the API's words where it gave them: an operation's errors (RATE_LIMITED), or the
 * socket's close reason, "CODE: message" (UNAUTHENTICATED when the key was revoked); else the network.
 */
function liveError(err: unknown): ApiError {
  const first = Array.isArray(err) ? (err[0] as { message?: string; extensions?: { code?: string } }) : null;
  if (first?.message) return new ApiError(first.message, String(first.extensions?.code ?? 'ERROR'));
  const reason = /^([A-Z_]+): (.+)$/.exec((err as { reason?: string } | null)?.reason ?? '');
  if (reason) return new ApiError(reason[2], reason[1]);
  return new ApiError(
    'Live updates were interrupted; they resume when this tab is shown again or the network is back (or reload).',
    'NETWORK',
  );
}

/** Calls `onUpdate` with every state of a generation until it finishes; returns a function that stops listening. */
export function follow(id: string, onUpdate: (g: Generation) => void, onError: (e: ApiError) => void): () => void {
  return ws.subscribe<{ generationUpdated: Generation }>(
    { query: `subscription($id: ID!) { generationUpdated(id: $id) { ${GENERATION_FIELDS} } }`, variables: { id } },
    {
      next: (r) => {
        if (r.errors?.length)
          onError(new ApiError(r.errors[0].message, String(r.errors[0].extensions?.code ?? 'ERROR')));
        else if (r.data) onUpdate(r.data.generationUpdated);
      },
      error: (err) => onError(liveError(err)),
      complete: () => {},
    },
  );
}
