/**
 * The architecture of one ganvas model. A checkpoint stores it beside the weights, so a loaded model is
 * rebuilt exactly as it was trained. Defaults follow PAPER.md (z 100, phi 1024, projections 128).
 */
export const IMAGE_SIZES = [32, 64, 128] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

/** Reed's 70-symbol character set (lower case); every other character maps to one "unknown" symbol. */
export const DEFAULT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{} ";

export interface TextEncoderConfig {
  alphabet: string;
  /** Captions are cut at this many characters. */
  maxLength: number;
  /** Widths of the three char-CNN layers (kernel 4; max-pool 3 after the first two). */
  convChannels: [number, number, number];
  gruUnits: number;
}

export interface ModelConfig {
  imageSize: ImageSize;
  zDim: number;
  /** Size of the caption embedding phi(t). */
  embedDim: number;
  /** Size of phi(t) after the generator's and the discriminator's own projections. */
  projDim: number;
  ngf: number;
  ndf: number;
  /** Width of the style encoder and of the image encoder used to pretrain phi. */
  nef: number;
  text: TextEncoderConfig;
}

export function defaultModelConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    imageSize: 64,
    zDim: 100,
    embedDim: 1024,
    projDim: 128,
    ngf: 64,
    ndf: 64,
    nef: 32,
    ...overrides,
    text: { alphabet: DEFAULT_ALPHABET, maxLength: 201, convChannels: [128, 192, 256], gruUnits: 256, ...overrides.text },
  };
}

/** Time steps the GRU sees: three kernel-4 convs with a max-pool of 3 after the first two. */
export function gruSteps(maxLength: number): number {
  const a = Math.floor((maxLength - 3) / 3);
  const b = Math.floor((a - 3) / 3);
  return b - 3;
}

/** Throws a message naming the bad field; used on every config read from a file or the command line. */
export function validateModelConfig(c: ModelConfig): ModelConfig {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`model config: ${name} must be a positive integer, got ${v}`);
  };
  if (!(IMAGE_SIZES as readonly number[]).includes(c.imageSize)) throw new Error(`model config: imageSize must be one of ${IMAGE_SIZES.join(', ')}, got ${c.imageSize}`);
  for (const k of ['zDim', 'embedDim', 'projDim', 'ngf', 'ndf', 'nef'] as const) positive(k, c[k]);
  positive('text.maxLength', c.text.maxLength);
  positive('text.gruUnits', c.text.gruUnits);
  c.text.convChannels.forEach((v, i) => positive(`text.convChannels[${i}]`, v));
  if (c.text.alphabet.length < 2) throw new Error('model config: text.alphabet is empty');
  if (gruSteps(c.text.maxLength) < 1) throw new Error('model config: text.maxLength must be at least 48 (three kernel-4 convs and two pools of 3)');
  return c;
}
