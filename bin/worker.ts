/** `npm run worker`: one worker against DATABASE_URL, serving the checkpoint in MODEL_DIR. */
import { runMain } from '../src/cli/args.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/ops/log.ts';
import { serve, startServices } from '../src/services.ts';

runMain(async () => {
  const config = loadConfig();
  const log = createLogger();
  if (!config.databaseUrl) throw new Error('npm run worker needs DATABASE_URL (npm start runs an embedded database)');
  await serve(startServices(config, { api: false, worker: true, migrate: false }, log), log);
});
