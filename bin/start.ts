/**
 * `npm start`: the API and a worker in one process. Without DATABASE_URL the database is embedded PGlite
 * (data in GANVAS_DATA_DIR, default .data/); with it, that Postgres. Migrations run first. On localhost
 * (the default HOST) it needs no API keys; on any other address it does.
 */
import 'reflect-metadata';
import { runMain } from '../src/cli/args.ts';
import { createLogger } from '../src/ops/log.ts';
import { isLoopback, serve, startConfig, startServices } from '../src/services.ts';

runMain(async () => {
  const config = startConfig(process.env);
  const log = createLogger();
  // on localhost the embedded service runs open (no keys), for a person trying it; elsewhere it needs keys
  const auth = isLoopback(config.host) ? 'open' : 'keys';
  // until a signal, or the worker can no longer work
  await serve(startServices(config, { api: true, worker: true, migrate: true, auth }, log), log);
});
