/**
 * How ganvas's pieces are wired into processes: the API, a worker, or both in one process (embedded
 * mode, `npm start`). Each entry file is a few lines around these.
 */
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { basename, join, resolve } from 'node:path';
import { type ApiServer, type AuthMode, startApiServer } from './api/server.ts';
import { type Config, describeDatabase, loadConfig } from './config.ts';
import { type Database, openConfiguredDatabase } from './db/database.ts';
import { migrate, pendingMigrations } from './db/migrate.ts';
import { ModelCatalog } from './generations/models.ts';
import { modelEntry } from './model/checkpoint-meta.ts';
import { registerModels } from './queue/workers.ts';
import { Inference } from './gpu-worker/inference.ts';
import { startWorker, type WorkerHandle } from './gpu-worker/worker.ts';
import type { Logger } from './ops/log.ts';
import { Metrics } from './ops/metrics.ts';
import { type Check, opsEndpoints, startOpsServer } from './ops/probes.ts';
import { Dispatcher } from './webhooks/dispatcher.ts';
import { startRetention } from './generations/retention.ts';
import { EXHAUSTED_SWEEP_MS, sweepExhausted } from './queue/sweep.ts';

/** The studio page, built by `npm run build:web` (part of the install). */
const WEB_DIR = join(__dirname, '..', 'web', 'dist');

export interface Running {
  db: Database;
  api?: ApiServer;
  /** A worker's job loops and inference threads, one each per model it serves. */
  workers: WorkerHandle[];
  inferences: Inference[];
  /** Sends webhook messages (API processes). */
  dispatcher?: Dispatcher;
  /** API processes' sweeps: jobs that used their attempts ended, expired generations deleted (RETENTION_DAYS). */
  sweeps: { stop(): Promise<void> }[];
  metrics: Metrics;
  /** A worker-only process's /healthz, /readyz and /metrics (WORKER_PORT). */
  ops?: Server;
  /** Resolves if the worker can no longer work (its inference thread died): the process should exit non-zero. */
  fatal: Promise<Error>;
  stop(handBack?: boolean): Promise<void>;
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

/**
 * `npm start`'s configuration: on localhost, where a person tries ganvas with receivers on the same machine,
 * webhooks may go to private addresses (unless WEBHOOK_ALLOW_PRIVATE says otherwise); on any other HOST, as in
 * production, they may not (else every key holder could make the server call the private network).
 */
export function startConfig(env: NodeJS.ProcessEnv): Config {
  const config = loadConfig(env);
  if (!isLoopback(config.host) || env.WEBHOOK_ALLOW_PRIVATE !== undefined) return config;
  return { ...config, webhooks: { ...config.webhooks, allowPrivate: true } };
}

export async function startServices(
  config: Config,
  roles: { api: boolean; worker: boolean; migrate: boolean; auth?: AuthMode },
  log: Logger,
): Promise<Running> {
  const line = (l: string) => log.info(l);
  const db = await openConfiguredDatabase(config, log);
  line(`database: ${describeDatabase(config)}`);
  if (roles.migrate) {
    // one line, not one a migration (a new database has every one of them; `npm run db:migrate` lists them)
    const applied = await migrate(db, line);
    line(
      applied.length
        ? `database schema: applied ${applied.length} migration(s), up to ${applied.at(-1)}`
        : 'database schema: up to date',
    );
  } else if (db.kind === 'postgres') {
    // this code reads columns and calls functions that a database behind it lacks: every request would fail
    const pending = await pendingMigrations(db);
    if (pending.length) {
      await db.close();
      throw new Error(
        `the database is ${pending.length} migration(s) behind this release (${pending[0]} first): run npm run db:migrate (the migration Job) before starting it`,
      );
    }
  }
  const metrics = new Metrics(roles);
  const running: Running = {
    db,
    workers: [],
    inferences: [],
    sweeps: [],
    metrics,
    fatal: new Promise(() => {}),
    stop: async (handBack = false) => {
      running.ops?.close();
      await Promise.all(running.workers.map((w) => w.stop(handBack)));
      await running.api?.close();
      await running.dispatcher?.stop();
      await Promise.all(running.sweeps.map((s) => s.stop()));
      await Promise.all(running.inferences.map((i) => i.stop()));
      await db.close();
    },
  };
  // what /readyz checks: the database answers and LISTEN is connected; a worker's model is loaded and its thread alive
  const checks: Record<string, Check> = {
    database: async () => (await db.query('SELECT 1')).length === 1,
    listen: () => db.listening(),
  };
  try {
    if (roles.worker) {
      for (const modelDir of config.modelDirs) {
        const inference = await Inference.start(modelDir, config.backend, line, config.inferenceThreads);
        running.inferences.push(inference);
        await inference.warmUp(config.maxBatch);
        const name = basename(modelDir);
        if (inference.meta.steps.gan === 0)
          log.warn(`model "${name}" is UNTRAINED (random weights): images prove the plumbing, not quality`);
        running.workers.push(await startWorker({ db, inference, modelDir, config, log, metrics }));
        const size = inference.config.imageSize;
        log.info(
          { worker: config.workerId, model: name },
          `worker ${config.workerId}: model "${name}" (${size}x${size}) on ${inference.threadCount} inference thread(s), batches of up to ${config.maxBatch} images from up to ${config.maxJobs} jobs`,
        );
      }
      // one model that can no longer draw makes the whole worker exit: its supervisor restarts it
      running.fatal = Promise.race(running.inferences.map((i) => i.died));
      checks.inference = () => running.inferences.every((i) => i.dead === null);
    }
    const endpoints = opsEndpoints(metrics, checks);
    if (roles.api) {
      metrics.watchQueue(db);
      // the API's own checkpoints join the catalog, so requests can name them before a worker comes
      const local = config.modelDirs.filter((d) => existsSync(join(d, 'checkpoint.json')));
      for (const d of config.modelDirs.filter((d) => !local.includes(d)))
        log.warn(
          `MODEL_DIR: no checkpoint at ${resolve(d)} here: model "${basename(d)}" is served once a worker of it ` +
            'registers, and until then a request for it is answered SERVICE_UNAVAILABLE (a typo in MODEL_DIR?)',
        );
      await registerModels(db.prisma, await Promise.all(local.map((d) => modelEntry(d))));
      const models = new ModelCatalog(db.prisma, basename(config.modelDirs[0]));
      const webDir = existsSync(WEB_DIR) ? WEB_DIR : null;
      if (!webDir) log.warn(`studio page not built (${WEB_DIR} is missing): run "npm run build:web"`);
      const auth = roles.auth ?? 'keys';
      if (auth === 'open' && !isLoopback(config.host))
        throw new Error(`open access (no API keys) is only allowed on localhost, not HOST=${config.host}`);
      running.api = await startApiServer({
        db,
        models,
        port: config.port,
        host: config.host,
        webDir,
        auth,
        quotas: config.quotas,
        ws: config.ws,
        allowPrivateWebhooks: config.webhooks.allowPrivate,
        log,
        metrics,
        endpoints,
      });
      line(
        auth === 'open'
          ? `open access: no API keys, listening on ${config.host} only`
          : db.kind === 'pglite'
            ? 'API keys required: the embedded database serves this process alone, so stop it, run npm run key:create -- --name NAME, and start it again'
            : 'API keys required (npm run key:create -- --name NAME)',
      );
      const base = `http://localhost:${running.api.port}`;
      if (config.webhooks.publicUrl === null && !isLoopback(config.host))
        log.warn(
          `PUBLIC_URL is not set: webhook messages will link images at ${base}, which receivers on other machines cannot reach`,
        );
      running.dispatcher = new Dispatcher(db.prisma, config.webhooks, config.webhooks.publicUrl ?? base, log, metrics);
      running.sweeps.push(sweepExhausted(db, metrics, log, EXHAUSTED_SWEEP_MS.api));
      if (config.retentionDays !== null) running.sweeps.push(startRetention(db.prisma, config.retentionDays, log));
      line(
        `GraphQL API at ${base}/graphql (HTTP and WebSocket; GraphiQL in a browser)${webDir ? `, studio at ${base}/` : ''}, metrics at ${base}/metrics`,
      );
    } else if (roles.worker) {
      running.ops = await startOpsServer(endpoints, config.workerPort, config.host);
      const { port } = running.ops.address() as { port: number };
      line(`worker health at http://${config.host}:${port}/readyz, metrics at /metrics`);
    }
  } catch (err) {
    await running.stop();
    throw err;
  }
  return running;
}

/**
 * Serves what `starting` starts until SIGINT/SIGTERM (a worker finishes or hands back its batch first,
 * exit 0) or until the worker cannot work (its jobs back in the queue, exit 1, so a supervisor restarts it).
 * Signals are handled from the start: one that comes while it starts stops it as soon as it has started.
 */
export async function serve(starting: Promise<Running>, log: Logger): Promise<never> {
  stopOnSignals(starting, log);
  const running = await starting;
  const err = await running.fatal;
  log.error(`${err.message}: its jobs go back to the queue (those it was drawing with that attempt counted); exiting`);
  await running.stop(true).catch(() => {});
  process.exit(1);
}

function stopOnSignals(starting: Promise<Running>, log: Logger): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info(`${signal}: stopping`);
    starting
      .then((running) => running.stop(true))
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'stopping failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}
