/** `npm run worker`: one worker against DATABASE_URL, serving the checkpoint in MODEL_DIR. */
import { runMain } from '../cli/args.ts';
import { loadConfig } from '../config.ts';
import { startServices, stopOnSignals } from '../services.ts';

runMain(async () => {
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error('npm run worker needs DATABASE_URL (npm start runs an embedded database)');
  stopOnSignals(await startServices(config, { api: false, worker: true, migrate: false }));
  await new Promise(() => {});
});
