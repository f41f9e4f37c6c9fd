/**
 * ganvas's one typed configuration, read from the environment once and validated at start-up; a bad
 * value stops the process with a message naming the variable.
 */
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { type BackendChoice, parseBackendChoice } from './model/backends.ts';
import type { WebhookSettings } from './webhooks/dispatcher.ts';
import type { Quotas } from './generations/admission.ts';

export interface Config {
  /** Postgres URL; unset means embedded PGlite in dataDir. */
  databaseUrl: string | null;
  /** DATABASE_LISTEN_URL: where LISTEN goes when DATABASE_URL is a pooler (PgBouncer); null: DATABASE_URL. */
  databaseListenUrl: string | null;
  /** DATABASE_POOL_SIZE: connections a process's query pool holds (LISTEN is one more). */
  databasePoolSize: number;
  /**
   * DATABASE_STATEMENT_TIMEOUT_SECONDS: longest one query of the pool may run or wait for a lock before Postgres
   * cancels it (the caller then gets SERVICE_UNAVAILABLE, not a request that hangs); 0: no limit. Not migrations.
   */
  databaseStatementTimeoutSeconds: number;
  dataDir: string;
  port: number;
  host: string;
  /**
   * Checkpoint folders (MODEL_DIR, comma-separated): a worker serves each; an API puts them in the catalog and
   * the first is the default model. A folder's name is its model's name in the API.
   */
  modelDirs: string[];
  backend: BackendChoice;
  /** Inference threads per model a worker serves (INFERENCE_THREADS); null: one on a native backend, else cores - 1. */
  inferenceThreads: number | null;
  /** Most images in one forward pass, across requests. */
  maxBatch: number;
  /** Most jobs one worker claims at once. */
  maxJobs: number;
  /** Lease a worker holds on its jobs, renewed every third of it. */
  leaseSeconds: number;
  /** Longest a worker keeps renewing one claim: then its leases lapse and the jobs return to the queue. */
  jobTimeLimitSeconds: number;
  workerId: string;
  /** A worker process's port for /healthz, /readyz and /metrics (0: any free port). */
  workerPort: number;
  /** Per owner, unless its key has its own: generations a minute, queued or running at once, images a day. */
  quotas: Quotas;
  ws: WsLimits;
  webhooks: WebhookSettings;
  /** Finished generations older than this many days are deleted (null: kept). */
  retentionDays: number | null;
}

/** What one WebSocket client may hold (graphql-ws on /graphql). */
export interface WsLimits {
  /** Largest message, in bytes, before authentication too (HTTP bodies: MAX_REQUEST_BYTES). */
  maxPayloadBytes: number;
  /** Time to send connection_init with a valid key before the socket is closed. */
  initTimeoutMs: number;
  subscriptionsPerConnection: number;
  connectionsPerKey: number;
  /** How often open sockets' keys are checked again: a revoked key's sockets close within this. */
  recheckMs: number;
  /**
   * How often every socket is pinged (WebSocket ping frames, which browsers and graphql-ws clients answer by
   * themselves; graphql-ws's keep-alive), and how long its pong may take before the socket is dropped: a client that
   * vanished without closing (a lost network, a sleeping laptop) frees its subscriptions, and a proxy that closes idle
   * connections sees traffic on a socket that waits for a long generation.
   */
  pingMs: number;
}

/**
 * The largest request, on HTTP and (by default) WebSocket: twice a 700,000-byte style upload in base64, so an
 * upload over its limit (src/images/upload.ts) by up to 1.5x still gets that check's BAD_USER_INPUT, not a
 * PAYLOAD_TOO_LARGE or a closed socket (which would end the client's other subscriptions too).
 */
export const MAX_REQUEST_BYTES = 2 * 1_048_576;

export const DEFAULT_WS_LIMITS: WsLimits = {
  maxPayloadBytes: MAX_REQUEST_BYTES,
  initTimeoutMs: 5_000,
  subscriptionsPerConnection: 100,
  connectionsPerKey: 50,
  recheckMs: 3_000,
  pingMs: 12_000,
};

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name] ?? '';
  if (!['', '0', '1', 'true', 'false'].includes(raw))
    throw new Error(`${name} must be 1 or 0 (or true or false), got "${raw}"`);
  return raw === '1' || raw === 'true';
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

function modelDirs(raw: string | undefined): string[] {
  const dirs = (raw ?? 'models/default')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean)
    .map((d) => resolve(d));
  const names = dirs.map((d) => basename(d));
  if (dirs.length === 0) throw new Error('MODEL_DIR must name at least one checkpoint folder');
  if (new Set(names).size !== names.length)
    throw new Error(`MODEL_DIR: two folders with one name (${names.join(', ')}); a folder's name is its model's`);
  return dirs;
}

function publicUrl(raw: string | undefined): string | null {
  if (!raw) return null;
  if (!/^https?:\/\/[^/]+\/?$/.test(raw))
    throw new Error(`PUBLIC_URL must be an origin like https://ganvas.example.com, got "${raw}"`);
  return raw.replace(/\/$/, '');
}

/** Which database a config names, for a process's first lines: server and database (never a password), or folder. */
export function describeDatabase(config: Pick<Config, 'databaseUrl' | 'dataDir'>): string {
  if (!config.databaseUrl) return `embedded PGlite in ${config.dataDir}`;
  try {
    const url = new URL(config.databaseUrl);
    if (url.host) return `postgres at ${url.host}${url.pathname} (DATABASE_URL)`;
  } catch {
    // a form pg reads and URL does not (several hosts, a Unix socket's folder): named as it is set
  }
  return 'postgres (DATABASE_URL)';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const postgresUrl = (name: string) => {
    const url = env[name]?.trim() || null;
    // only what comes before its first ':' is repeated: the rest may hold the password
    if (url && !/^postgres(ql)?:\/\//.test(url))
      throw new Error(`${name} must be a postgres:// URL; it starts "${/^[^:/@]{0,20}/.exec(url)![0]}..."`);
    return url;
  };
  const url = postgresUrl('DATABASE_URL');
  const listenUrl = postgresUrl('DATABASE_LISTEN_URL');
  if (listenUrl && !url)
    throw new Error('DATABASE_LISTEN_URL needs DATABASE_URL (the embedded database has no server)');
  const webhookBackoff = int(env, 'WEBHOOK_BACKOFF_SECONDS', 5, 1, 3600);
  const webhookRetryFor = int(env, 'WEBHOOK_RETRY_FOR_SECONDS', 86_400, 1, 30 * 86_400);
  if (webhookBackoff >= webhookRetryFor)
    throw new Error(
      `WEBHOOK_BACKOFF_SECONDS (${webhookBackoff}) must be less than WEBHOOK_RETRY_FOR_SECONDS (${webhookRetryFor}): no webhook message could be sent again`,
    );
  return {
    databaseUrl: url,
    databaseListenUrl: listenUrl,
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 1, 1000),
    databaseStatementTimeoutSeconds: int(env, 'DATABASE_STATEMENT_TIMEOUT_SECONDS', 30, 0, 3600),
    dataDir: resolve(env.GANVAS_DATA_DIR ?? '.data'),
    port: int(env, 'PORT', 4000, 0, 65535),
    host: env.HOST ?? '127.0.0.1',
    modelDirs: modelDirs(env.MODEL_DIR),
    backend: parseBackendChoice(env.GANVAS_BACKEND),
    inferenceThreads: env.INFERENCE_THREADS ? int(env, 'INFERENCE_THREADS', 1, 1, 256) : null,
    maxBatch: int(env, 'WORKER_MAX_BATCH', 64, 1, 1024),
    maxJobs: int(env, 'WORKER_MAX_JOBS', 8, 1, 256),
    leaseSeconds: int(env, 'WORKER_LEASE_SECONDS', 30, 3, 3600),
    jobTimeLimitSeconds: int(env, 'JOB_TIME_LIMIT_SECONDS', 600, 10, 86_400),
    workerId: env.WORKER_ID ?? `${hostname()}:${process.pid}`,
    workerPort: int(env, 'WORKER_PORT', 9464, 0, 65535),
    quotas: {
      perMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 120, 1, 1_000_000),
      queued: int(env, 'QUEUE_LIMIT', 200, 1, 1_000_000),
      imagesPerDay: env.IMAGES_PER_DAY ? int(env, 'IMAGES_PER_DAY', 0, 1, 1_000_000_000) : null,
    },
    ws: {
      maxPayloadBytes: int(env, 'WS_MAX_PAYLOAD_BYTES', DEFAULT_WS_LIMITS.maxPayloadBytes, 1024, 100 * 1_048_576),
      initTimeoutMs: 1000 * int(env, 'WS_INIT_TIMEOUT_SECONDS', DEFAULT_WS_LIMITS.initTimeoutMs / 1000, 1, 600),
      subscriptionsPerConnection: int(
        env,
        'WS_MAX_SUBSCRIPTIONS',
        DEFAULT_WS_LIMITS.subscriptionsPerConnection,
        1,
        100_000,
      ),
      connectionsPerKey: int(env, 'WS_MAX_CONNECTIONS_PER_KEY', DEFAULT_WS_LIMITS.connectionsPerKey, 1, 100_000),
      recheckMs: DEFAULT_WS_LIMITS.recheckMs,
      pingMs: 1000 * int(env, 'WS_PING_SECONDS', DEFAULT_WS_LIMITS.pingMs / 1000, 1, 3600),
    },
    retentionDays: env.RETENTION_DAYS ? int(env, 'RETENTION_DAYS', 0, 1, 36_500) : null,
    webhooks: {
      allowPrivate: flag(env, 'WEBHOOK_ALLOW_PRIVATE'),
      timeoutSeconds: int(env, 'WEBHOOK_TIMEOUT_SECONDS', 10, 1, 300),
      backoffSeconds: webhookBackoff,
      retryForSeconds: webhookRetryFor,
      publicUrl: publicUrl(env.PUBLIC_URL),
    },
  };
}
