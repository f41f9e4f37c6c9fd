/**
 * The architecture of one ganvas model. A checkpoint stores it beside the weights, so a loaded model is
 * rebuilt exactly as it was trained. Defaults follow the paper (docs/method.md §G: z 100, phi 1024,
 * projections 128).
 */
export const IMAGE_SIZES = [32, 64, 128] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

/** Reed's 70-symbol character set (lower case); every other character maps to one "unknown" symbol. */
export const DEFAULT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:\'"/\\|_@#$%^&*~`+-=<>()[]{} ';

export interface TextEncoderConfig {
  alphabet: string;
  /** Captions are cut at this many characters. */
  maxLength: number;
  /** Widths of the three char-CNN layers (kernel 4; max-pool 3 after the first two). */
  convChannels: [number, number, number];
  gruUnits: number;
}

/**
 * How G doubles its resolution: the paper's stride-2 transposed convolutions, or resize then convolve (no
 * checkerboard).
 */
export const UPSAMPLINGS = ['transposed', 'resize'] as const;
export type Upsampling = (typeof UPSAMPLINGS)[number];

/**
 * How G reads phi(t). `paper`: Linear + LeakyReLU. `centred`: phi(t) minus the training captions' mean,
 * divided by their spread, first (every phi(t) lies in a narrow cone, so raw angles are tiny). `augmented`:
 * centred, then StackGAN's conditioning augmentation (a Gaussian around the projection, with a KL term).
 */
export const CONDITIONINGS = ['paper', 'centred', 'augmented'] as const;
export type Conditioning = (typeof CONDITIONINGS)[number];

/**
 * How D reads phi(t). `paper`: its projection tiled onto the 4x4 image features, then a 1x1 and a 4x4 convolution
 * (docs/method.md §D). `projection`: that, plus the projection discriminator's term (Miyato and Koyama, 2018): the
 * inner product of the image features, pooled, with a linear map of phi(t), added to the logit, so D scores how
 * well an image matches its caption directly.
 */
export const DISCRIMINATORS = ['paper', 'projection'] as const;
export type DiscriminatorKind = (typeof DISCRIMINATORS)[number];

/**
 * Where G reads phi(t). `paper`: once, concatenated with z at the input (docs/method.md §G). `affine`: there and at
 * every resolution with a batch norm: each such layer's output is scaled and shifted per channel by a linear map of
 * the conditioning code (conditional batch norm, as BigGAN's G and DF-GAN's text affine layers), so colour and
 * part words reach the layers that draw them.
 */
export const GENERATORS = ['paper', 'affine'] as const;
export type GeneratorKind = (typeof GENERATORS)[number];

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
  upsampling: Upsampling;
  conditioning: Conditioning;
  discriminator: DiscriminatorKind;
  generator: GeneratorKind;
  /**
   * How far out the served model samples its noise: the image of a seed is G(noiseScale x z, h) with z ~ N(0, I)
   * from the seed (1: as the GAN trained). Chosen by evaluation and set in training, where standing statistics and
   * S are made at it (`--noise-scale`, docs/training.md); `model:export` and `eval` can relabel it.
   */
  noiseScale: number;
  /**
   * How far around mu(phi) the served model samples its conditioning (`augmented` only): c = mu + s sigma e with
   * e ~ N(0, I) from the seed, as StackGAN samples at test time (0: c = mu, a seed's image depends on z alone).
   * Chosen and set as noiseScale is (`--conditioning-noise`).
   */
  conditioningNoise: number;
  /**
   * Where the served model places a caption's phi(t) relative to the training captions' mean m (`centred`,
   * `augmented`): G reads m + conditioningGain x (phi(t) - m). G trains on the mean of 4 captions' phi (the paper's),
   * which lies nearer m than the one caption's phi the service draws with; training sets this to that ratio
   * (CaptionEmbeddings.trainingGain, docs/training.md), so a served caption lies as far out as G's training inputs
   * (1: phi(t) as it is).
   */
  conditioningGain: number;
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
    upsampling: 'transposed',
    conditioning: 'paper',
    discriminator: 'paper',
    generator: 'paper',
    noiseScale: 1,
    conditioningNoise: 0,
    conditioningGain: 1,
    ...overrides,
    text: {
      alphabet: DEFAULT_ALPHABET,
      maxLength: 201,
      convChannels: [128, 192, 256],
      gruUnits: 256,
      ...overrides.text,
    },
  };
}

/**
 * Length of the noise vector a seed gives: z, then the conditioning noise e where the model samples its
 * conditioning (conditioningNoise > 0).
 */
export const latentDim = (c: ModelConfig): number => c.zDim + (c.conditioningNoise > 0 ? c.projDim : 0);

/** Time steps the GRU sees: three kernel-4 convs with a max-pool of 3 after the first two. */
export function gruSteps(maxLength: number): number {
  const a = Math.floor((maxLength - 3) / 3);
  const b = Math.floor((a - 3) / 3);
  return b - 3;
}

/**
 * Throws a message naming the bad field; used on every config read from a file or the command line.
 * Fields added after a checkpoint was written take the paper's value, so older checkpoints load unchanged.
 */
export function validateModelConfig(c: ModelConfig): ModelConfig {
  c.upsampling ??= 'transposed';
  c.conditioning ??= 'paper';
  c.discriminator ??= 'paper';
  c.generator ??= 'paper';
  c.noiseScale ??= 1;
  if (!(c.noiseScale > 0 && c.noiseScale <= 4))
    throw new Error(`model config: noiseScale must be above 0 and at most 4, got ${c.noiseScale}`);
  c.conditioningNoise ??= 0;
  if (!(c.conditioningNoise >= 0 && c.conditioningNoise <= 4))
    throw new Error(`model config: conditioningNoise must be 0 (off) or at most 4, got ${c.conditioningNoise}`);
  if (c.conditioningNoise > 0 && c.conditioning !== 'augmented')
    throw new Error(`model config: conditioningNoise needs conditioning augmented, not ${c.conditioning}`);
  c.conditioningGain ??= 1;
  if (!(c.conditioningGain > 0 && c.conditioningGain <= 2))
    throw new Error(`model config: conditioningGain must be above 0 and at most 2, got ${c.conditioningGain}`);
  if (c.conditioningGain !== 1 && c.conditioning === 'paper')
    throw new Error("model config: conditioningGain needs conditioning centred or augmented (a captions' mean)");
  if (!UPSAMPLINGS.includes(c.upsampling))
    throw new Error(`model config: upsampling must be one of ${UPSAMPLINGS.join(', ')}, got ${c.upsampling}`);
  if (!DISCRIMINATORS.includes(c.discriminator))
    throw new Error(`model config: discriminator must be one of ${DISCRIMINATORS.join(', ')}, got ${c.discriminator}`);
  if (!GENERATORS.includes(c.generator))
    throw new Error(`model config: generator must be one of ${GENERATORS.join(', ')}, got ${c.generator}`);
  if (!CONDITIONINGS.includes(c.conditioning))
    throw new Error(`model config: conditioning must be one of ${CONDITIONINGS.join(', ')}, got ${c.conditioning}`);
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`model config: ${name} must be a positive integer, got ${v}`);
  };
  if (!(IMAGE_SIZES as readonly number[]).includes(c.imageSize))
    throw new Error(`model config: imageSize must be one of ${IMAGE_SIZES.join(', ')}, got ${c.imageSize}`);
  for (const k of ['zDim', 'embedDim', 'projDim', 'ngf', 'ndf', 'nef'] as const) positive(k, c[k]);
  positive('text.maxLength', c.text.maxLength);
  positive('text.gruUnits', c.text.gruUnits);
  c.text.convChannels.forEach((v, i) => positive(`text.convChannels[${i}]`, v));
  if (c.text.alphabet.length < 2) throw new Error('model config: text.alphabet is empty');
  if (gruSteps(c.text.maxLength) < 1)
    throw new Error('model config: text.maxLength must be at least 48 (three kernel-4 convs and two pools of 3)');
  return c;
}
