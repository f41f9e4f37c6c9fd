/**
 * How ganvas's pieces are wired into processes: the API, a worker, or both in one process (embedded
 * mode, `npm start`). Each entry file is a few lines around these.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type ApiServer, type AuthMode, startApiServer } from './api/server.ts';
import type { Config } from './config.ts';
import { type Database, openDatabase } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import { ModelCatalog } from './generations/models.ts';
import { Inference } from './gpu-worker/inference.ts';
import { startWorker, type WorkerHandle } from './gpu-worker/worker.ts';

/** The studio page, built by `npm run build:web` (part of the install). */
const WEB_DIR = join(__dirname, '..', 'web', 'dist');

export interface Running {
  db: Database;
  api?: ApiServer;
  worker?: WorkerHandle;
  inference?: Inference;
  /** Resolves if the worker can no longer work (its inference thread died): the process should exit non-zero. */
  fatal: Promise<Error>;
  stop(handBack?: boolean): Promise<void>;
}

export const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

export async function startServices(config: Config, roles: { api: boolean; worker: boolean; migrate: boolean; auth?: AuthMode }, log: (line: string) => void = console.log): Promise<Running> {
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  log(config.databaseUrl ? 'database: postgres (DATABASE_URL)' : `database: embedded PGlite in ${config.dataDir}`);
  if (roles.migrate) await migrate(db, log);
  const running: Running = {
    db,
    fatal: new Promise(() => {}),
    stop: async (handBack = false) => {
      await running.worker?.stop(handBack);
      await running.api?.close();
      await running.inference?.stop();
      await db.close();
    },
  };
  try {
    if (roles.worker) {
      running.inference = await Inference.start(config.modelDir, config.backend, log);
      const name = basename(config.modelDir);
      if (running.inference.meta.steps.gan === 0) log(`model "${name}" is UNTRAINED (random weights): images prove the plumbing, not quality`);
      running.worker = await startWorker({ db, inference: running.inference, modelName: name, config, log });
      running.fatal = running.inference.died;
      log(`worker ${config.workerId}: model "${name}" (${running.inference.config.imageSize}x${running.inference.config.imageSize}), batches of up to ${config.maxBatch} images from up to ${config.maxJobs} jobs`);
    }
    if (roles.api) {
      const models = await ModelCatalog.load([config.modelDir]);
      const webDir = existsSync(WEB_DIR) ? WEB_DIR : null;
      if (!webDir) log(`studio page not built (${WEB_DIR} is missing): run "npm run build:web"`);
      const auth = roles.auth ?? 'keys';
      if (auth === 'open' && !isLoopback(config.host)) throw new Error(`open access (no API keys) is only allowed on localhost, not HOST=${config.host}`);
      running.api = await startApiServer({ db, models, port: config.port, host: config.host, webDir, auth, quotas: config.quotas, ws: config.ws });
      log(auth === 'open' ? `open access: no API keys, listening on ${config.host} only` : 'API keys required (npm run key:create -- --name NAME)');
      log(`GraphQL API at http://localhost:${running.api.port}/graphql (HTTP and WebSocket)${webDir ? `, studio at http://localhost:${running.api.port}/` : ''}`);
    }
  } catch (err) {
    await running.stop();
    throw err;
  }
  return running;
}

/**
 * Serves until SIGINT/SIGTERM (a worker finishes or hands back its batch first, exit 0) or until the
 * worker cannot work (its jobs handed back, exit 1, so a supervisor restarts it).
 */
export async function serve(running: Running, log: (line: string) => void = console.log): Promise<never> {
  stopOnSignals(running, log);
  const err = await running.fatal;
  log(`${err.message}: handing back its jobs and exiting`);
  await running.stop(true).catch(() => {});
  process.exit(1);
}

function stopOnSignals(running: Running, log: (line: string) => void): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal}: stopping`);
    running.stop(true).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}
