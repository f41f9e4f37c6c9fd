/**
 * `npm start`: the API and a worker in one process. Without DATABASE_URL the database is embedded PGlite
 * (data in GANVAS_DATA_DIR, default .data/); with it, that Postgres. Migrations run first.
 */
import 'reflect-metadata';
import { runMain } from './cli/args.ts';
import { loadConfig } from './config.ts';
import { startServices, stopOnSignals } from './services.ts';

runMain(async () => {
  const config = loadConfig();
  const running = await startServices(config, { api: true, worker: true, migrate: true });
  stopOnSignals(running);
  await new Promise(() => {}); // serve until a signal
});
