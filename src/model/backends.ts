/**
 * The TensorFlow.js backends ganvas can run on, best first, and the parsing of a choice among them:
 * without TensorFlow.js itself, so configuration can name a backend in processes that run no model.
 */
export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendChoice = BackendName | 'auto';

export function parseBackendChoice(value: string | undefined): BackendChoice {
  const v = (value ?? 'auto').trim() || 'auto';
  if (v === 'auto' || (BACKENDS as readonly string[]).includes(v)) return v as BackendChoice;
  throw new Error(`unknown backend "${v}": use auto, ${BACKENDS.join(', ')}`);
}
