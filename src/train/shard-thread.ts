/**
 * A training thread (shards.ts): a replica of the model on its own backend that receives weights and
 * shards of batches, and answers each step with its shards' gradients, statistics and loss terms.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../model/backend.ts';
import type { BackendName } from '../model/backends.ts';
import type { ModelConfig } from '../model/config.ts';
import { buildModel, networkParams } from '../model/model.ts';
import { type ShardRequest, computeShards } from './shards.ts';
import { messageOf } from '../errors.ts';

async function main(): Promise<void> {
  const { config, withEma, backend } = workerData as { config: ModelConfig; withEma: boolean; backend: BackendName };
  await initBackend(backend);
  const model = buildModel(config, 0, true, withEma);
  const params = networkParams(model);
  parentPort!.on('message', (req: ShardRequest) => {
    if (req.op === 'weights') {
      tf.tidy(() => {
        for (const [net, values] of req.nets)
          [...params.get(net)!.all().values()].forEach((v, i) => v.assign(tf.tensor(values[i], v.shape)));
      });
      return;
    }
    try {
      const outputs = computeShards(model, req.kind, req.shards, req.options);
      parentPort!.postMessage({ ok: true, outputs });
    } catch (err) {
      parentPort!.postMessage({ ok: false, error: messageOf(err) });
    }
  });
  parentPort!.postMessage({ ready: true });
}

main().catch((err: unknown) => parentPort!.postMessage({ ready: false, error: messageOf(err) }));
