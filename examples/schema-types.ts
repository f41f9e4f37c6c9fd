// Generated from the GraphQL schema (schema.graphql) by `npm run schema`; do not edit.

export interface GenerateImagesInput {
  caption: string;
  count?: number | null;
  seed?: number | null;
  model?: string | null;
}

export interface Generation {
  id: string;
  kind: GenerationKind;
  status: GenerationStatus;
  /** One caption; the two ends of an interpolation; the new captions of a style transfer. */
  captions: string[];
  /** Chosen by the server when the request gives none. */
  seed: number;
  /** The second noise seed of a NOISE_INTERPOLATION. */
  endSeed: number | null;
  model: string;
  error: string | null;
  /** 0..1 */
  progress: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** In index order, those finished so far. */
  images: Image[];
  /** The images as an animated PNG (loops there and back), once there are two. */
  animationUrl: string | null;
}

export interface GenerationConnection {
  edges: GenerationEdge[];
  pageInfo: PageInfo;
}

export interface GenerationEdge {
  cursor: string;
  node: Generation;
}

export type GenerationKind = 'TEXT_TO_IMAGE' | 'CAPTION_INTERPOLATION' | 'STYLE_TRANSFER' | 'NOISE_INTERPOLATION';

export type GenerationStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';

export interface Image {
  id: string;
  index: number;
  width: number;
  height: number;
  caption: string;
  seed: number;
  /** Interpolation weight of the second caption (or noise seed), 0..1. */
  mix: number | null;
  /** Path of the PNG on this API, /images/<id>.png?t=<token>: unguessable, cacheable for ever. */
  url: string;
  generation: Generation;
}

export interface InterpolateCaptionsInput {
  from: string;
  to: string;
  steps?: number | null;
  seed?: number | null;
  model?: string | null;
}

export interface InterpolateNoiseInput {
  caption: string;
  /** Chosen by the server when absent. */
  fromSeed?: number | null;
  /** Chosen by the server when absent. */
  toSeed?: number | null;
  steps?: number | null;
  model?: string | null;
}

export interface ModelInfo {
  name: string;
  imageSize: number;
  /** gan, gan-cls, gan-int or gan-int-cls */
  variant: string;
  /** The model used when a request names none. */
  isDefault: boolean;
  /** Random weights (npm run model:init): proves the plumbing, not image quality. */
  untrained: boolean;
  trainingSteps: number;
}

export interface Mutation {
  /** Returns at once, status QUEUED. */
  generateImages: Generation;
  interpolateCaptions: Generation;
  /** One caption, the noise moving between two seeds: the same content in changing styles. */
  interpolateNoise: Generation;
  transferStyle: Generation;
  cancelGeneration: Generation;
}

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface Query {
  /** NOT_FOUND error for an id that does not exist. */
  generation: Generation | null;
  /** Relay connection, newest first. */
  generations: GenerationConnection;
  models: ModelInfo[];
  /** NOT_FOUND error for an id that does not exist. */
  image: Image | null;
}

export interface Subscription {
  /** Every status or progress change and each new image; completes when the generation has finished. */
  generationUpdated: Generation;
}

/** Exactly one of imageId (an image of yours) and image (an upload). */
export interface TransferStyleInput {
  imageId?: string | null;
  /** A PNG or JPEG, base64 or a data: URL, at most 700 kB and 2048x2048. */
  image?: string | null;
  captions: string[];
  model?: string | null;
}
