/**
 * The models a deployment serves, read from checkpoint folders (config only, no weights): the API uses it
 * to validate requests and answer `models`; workers claim jobs for the models they have loaded.
 */
import { basename } from 'node:path';
import { badInput } from '../errors.ts';
import { type CheckpointMeta, isUntrained, readCheckpointMeta } from '../model/checkpoint-meta.ts';

export interface ModelInfo {
  name: string;
  imageSize: number;
  variant: string;
  isDefault: boolean;
  untrained: boolean;
  trainingSteps: number;
}

export class ModelCatalog {
  private constructor(private readonly models: Map<string, ModelInfo>) {}

  static async load(dirs: string[]): Promise<ModelCatalog> {
    const models = new Map<string, ModelInfo>();
    for (const [i, dir] of dirs.entries()) {
      const meta: CheckpointMeta = await readCheckpointMeta(dir);
      const name = basename(dir);
      models.set(name, {
        name,
        imageSize: meta.model.imageSize,
        variant: String(meta.training?.variant ?? 'gan-int-cls'),
        isDefault: i === 0,
        untrained: isUntrained(meta),
        trainingSteps: meta.steps.gan,
      });
    }
    return new ModelCatalog(models);
  }

  list(): ModelInfo[] {
    return [...this.models.values()];
  }

  /** The model a request names, or the default; unknown names are the user's error. */
  resolve(name: string | null | undefined): ModelInfo {
    if (name === null || name === undefined) return this.list().find((m) => m.isDefault)!;
    const m = this.models.get(name);
    if (!m) throw badInput(`unknown model "${name.slice(0, 100)}"; available: ${[...this.models.keys()].join(', ')}`);
    return m;
  }
}
