/** A worker in the test process, sharing the API's database handle (PGlite is one process). */
import { basename } from 'node:path';
import type { Config } from '../../src/config.ts';
import { Inference } from '../../src/gpu-worker/inference.ts';
import { startWorker } from '../../src/gpu-worker/worker.ts';
import type { Running } from '../../src/services.ts';
import { silentLogger } from '../../src/ops/log.ts';

export async function startInProcessWorker(
  api: Running,
  config: Config,
  modelName: string,
): Promise<{ stop(): Promise<void> }> {
  const modelDir = config.modelDirs.find((d) => basename(d) === modelName)!;
  const inference = await Inference.start(modelDir, config.backend, () => {});
  const handle = await startWorker({
    db: api.db,
    inference,
    modelDir,
    config,
    log: silentLogger(),
    metrics: api.metrics,
  });
  return {
    stop: async () => {
      await handle.stop();
      await inference.stop();
    },
  };
}
