/** The service config tests run with: embedded PGlite in memory unless a database URL is given, a random port. */
import { type Config, DEFAULT_WS_LIMITS } from '../../src/config.ts';

export function testConfig(modelDir: string, overrides: Partial<Config> = {}): Config {
  return {
    databaseUrl: null,
    databaseListenUrl: null,
    databasePoolSize: 10,
    databaseStatementTimeoutSeconds: 30,
    dataDir: 'memory://',
    port: 0,
    host: '127.0.0.1',
    modelDirs: [modelDir],
    backend: 'wasm',
    inferenceThreads: 1,
    maxBatch: 8,
    maxJobs: 4,
    leaseSeconds: 10,
    jobTimeLimitSeconds: 600,
    workerId: 'test',
    workerPort: 0,
    quotas: { perMinute: 1000, queued: 1000, imagesPerDay: null },
    ws: DEFAULT_WS_LIMITS,
    retentionDays: null,
    webhooks: { allowPrivate: true, timeoutSeconds: 5, backoffSeconds: 1, retryForSeconds: 600, publicUrl: null },
    ...overrides,
  };
}
