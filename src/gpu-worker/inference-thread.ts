/**
 * The model, on its own thread: a forward pass takes seconds on a CPU backend, and the job loop, lease
 * renewals and (in embedded mode) the API must keep running meanwhile. Requests and replies are messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../model/backend.ts';
import type { BackendChoice } from '../model/backends.ts';
import { Synthesizer } from '../model/synthesizer.ts';
import { messageOf } from '../errors.ts';

export type InferenceRequest =
  | { id: number; op: 'embed'; captions: string[] }
  | { id: number; op: 'draw'; items: { z: Float32Array; h: Float32Array }[] }
  | { id: number; op: 'styleOf'; images: Uint8Array[] };

export type InferenceReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

async function main(): Promise<void> {
  const { modelDir, backend } = workerData as { modelDir: string; backend: BackendChoice };
  let line = '';
  const name = await initBackend(backend, (l) => (line = l));
  const synth = await Synthesizer.load(modelDir);
  parentPort!.postMessage({
    ready: true,
    backend: name,
    line,
    config: synth.config,
    meta: synth.meta,
    centre: synth.conditioningCentre,
  });
  parentPort!.on('message', (req: InferenceRequest) => {
    try {
      const result =
        req.op === 'embed'
          ? synth.embed(req.captions)
          : req.op === 'draw'
            ? synth.draw(req.items)
            : synth.styleOf(req.images);
      parentPort!.postMessage({ id: req.id, ok: true, result } satisfies InferenceReply);
    } catch (err) {
      parentPort!.postMessage({ id: req.id, ok: false, error: messageOf(err) } satisfies InferenceReply);
    }
  });
}

main().catch((err: unknown) => {
  parentPort!.postMessage({ ready: false, error: messageOf(err) });
});
