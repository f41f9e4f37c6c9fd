/** `npm run api`: one API instance against DATABASE_URL (run as many as you like). */
import 'reflect-metadata';
import { runMain } from '../src/cli/args.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/ops/log.ts';
import { serve, startServices } from '../src/services.ts';

runMain(async () => {
  const config = loadConfig();
  const log = createLogger();
  if (!config.databaseUrl) throw new Error('npm run api needs DATABASE_URL (npm start runs an embedded database)');
  await serve(startServices(config, { api: true, worker: false, migrate: false }, log), log);
});
