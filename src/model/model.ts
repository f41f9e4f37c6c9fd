/**
 * One GAN-INT-CLS model: its config and its networks. Inference needs phi, G and S; training also D and
 * the image encoder phi is pretrained against.
 */
import { type ModelConfig, validateModelConfig } from './config.ts';
import {
  buildDiscriminator,
  buildGenerator,
  buildImageEncoder,
  buildStyleEncoder,
  buildTextEncoder,
  type Discriminator,
  type Generator,
  type ImageEncoder,
  type StyleEncoder,
  type TextEncoder,
} from './networks.ts';
import type { ParamStore } from './layers.ts';
import { Rng } from './random.ts';

export const NETWORK_NAMES = ['text', 'generator', 'style', 'discriminator', 'image', 'ema'] as const;
export type NetworkName = (typeof NETWORK_NAMES)[number];
export const INFERENCE_NETWORKS: readonly NetworkName[] = ['text', 'generator', 'style'];

export interface Model {
  config: ModelConfig;
  text: TextEncoder;
  generator: Generator;
  style: StyleEncoder;
  /** Present when built for training. */
  discriminator?: Discriminator;
  image?: ImageEncoder;
  /** Present when trained with an exponential moving average of G's weights: the G that is served. */
  ema?: Generator;
}

/** The generator inference uses: the moving average where there is one. */
export const servedGenerator = (model: Model): Generator => model.ema ?? model.generator;

/**
 * Builds the networks with the paper's initialisation; each network draws from its own seeded stream.
 * `withEma` adds a second G for the moving average, starting equal to G.
 */
export function buildModel(config: ModelConfig, seed: number, forTraining = true, withEma = false): Model {
  validateModelConfig(config);
  const rng = (i: number) => new Rng((seed * 7919 + i * 104729) >>> 0);
  const model: Model = {
    config,
    text: buildTextEncoder(config, rng(1)),
    generator: buildGenerator(config, rng(2)),
    style: buildStyleEncoder(config, rng(3)),
  };
  if (forTraining) {
    model.discriminator = buildDiscriminator(config, rng(4));
    model.image = buildImageEncoder(config, rng(5));
  }
  if (withEma) model.ema = buildGenerator(config, rng(2));
  return model;
}

export function networkParams(model: Model): Map<NetworkName, ParamStore> {
  const out = new Map<NetworkName, ParamStore>();
  for (const name of NETWORK_NAMES) {
    const net = model[name];
    if (net) out.set(name, net.params);
  }
  return out;
}

export function disposeModel(model: Model): void {
  for (const p of networkParams(model).values()) p.dispose();
}
