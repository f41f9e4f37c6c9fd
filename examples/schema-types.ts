// Generated from the GraphQL schema (schema.graphql) by `npm run schema`; do not edit.

/** Which of your generations deleteGenerations deletes: those matching every field given (at least one, else BAD_USER_INPUT). */
export interface DeleteGenerationsInput {
  /** Only generations with this status. */
  status?: GenerationStatus | null;
  /** Only generations of this kind. */
  kind?: GenerationKind | null;
  /** Only generations created before this instant (UTC); the current time selects them all. */
  createdBefore?: string | null;
}

/** Where one webhook message is. */
export type DeliveryStatus = 'PENDING' | 'DELIVERED' | 'FAILED';

/** A caption to draw count images of, each from its own noise seed. */
export interface GenerateImagesInput {
  /** What to draw. Not empty and at most 500 characters (Unicode code points); control characters (newlines, tabs, NUL...) become spaces, a lone UTF-16 surrogate U+FFFD, and the ends are trimmed before it is checked and stored. Otherwise BAD_USER_INPUT. The model reads its first ModelInfo.captionCharacters characters (201 for the paper's text encoder). */
  caption: string;
  /** How many images, 1 to 16 (default 4). Outside the range is BAD_USER_INPUT. */
  count?: number | null;
  /** Any 32-bit integer; image i uses the noise of seed + i, so a seed gives the same images again. Absent or null: chosen at random (Generation.seed tells it). */
  seed?: number | null;
  /** Name of the model to draw with (see Query.models); absent or null: the default model. An unknown name is BAD_USER_INPUT. */
  model?: string | null;
  /** Optional: a URL that ganvas POSTs this generation to (signed, Standard Webhooks) when the chosen events happen; see WebhookInput. A URL that may not be sent to is BAD_USER_INPUT and stores nothing. */
  webhook?: WebhookInput | null;
  /** Optional: a key of yours (1 to 200 characters, no control characters or lone surrogates) naming this request, so that sending it again is safe: a request with a key this API key used before answers the generation that one made, as it is now, and makes and counts nothing (a retry after a timeout, at once or days later, while that generation exists). The same key with another request (other captions, kind, number of images, or seeds, model, source image or webhook URL given) is BAD_USER_INPUT. A new request needs a new key (a UUID, say). */
  idempotencyKey?: string | null;
}

/** One request (text to image, an interpolation or a style transfer) and its images. */
export interface Generation {
  /** Its id, a UUID: for generation, generationUpdated and cancelGeneration. */
  id: string;
  /** Which mutation made it, and so how its images use captions and seeds. */
  kind: GenerationKind;
  /** Where it is now; SUCCEEDED, FAILED and CANCELED are final. */
  status: GenerationStatus;
  /** The captions as stored (control characters as spaces, trimmed): one caption; the two ends of an interpolation (from, to); the new captions of a style transfer, one per image. */
  captions: string[];
  /** The noise seed: image i of TEXT_TO_IMAGE uses seed + i; interpolations keep it (fromSeed for noise); a style transfer has its source image's seed, or 0 for an upload (its images are drawn from the style image, not from noise). Random (0 to 2^31 - 2) when the request gives none. */
  seed: number;
  /** The second noise seed (toSeed) of a NOISE_INTERPOLATION; null otherwise. */
  endSeed: number | null;
  /** Name of the model that draws it (one of Query.models). */
  model: string;
  /** Why it FAILED, in words for people (never a stack trace); null unless status is FAILED. */
  error: string | null;
  /** Images it makes: count, steps, or one per caption of a STYLE_TRANSFER (images holds those drawn so far). */
  imageCount: number;
  /** Share of its images drawn, 0 to 1 (images stored / imageCount); 1 once SUCCEEDED. */
  progress: number;
  /** The image a STYLE_TRANSFER drew in the style of, when given by imageId (it may since have been deleted); null for an uploaded image and other kinds. */
  styleImageId: string | null;
  /** When the request was accepted (UTC, millisecond precision). Lists are newest first by it. */
  createdAt: string;
  /** When a worker started drawing it (UTC); null while QUEUED. */
  startedAt: string | null;
  /** When it reached SUCCEEDED, FAILED or CANCELED (UTC); null before. */
  finishedAt: string | null;
  /** The idempotencyKey its request carried; null if none. */
  idempotencyKey: string | null;
  /** Images drawn so far, in index order (all of them once SUCCEEDED). */
  images: Image[];
  /** Path on this API of its images as an animated PNG (150 ms a frame, there and back, looping), with an unguessable token; null until it has two images. */
  animationUrl: string | null;
  /** While QUEUED: how many generations a worker for its model takes before it (0: next), under the fair order across API keys; pushed over generationUpdated as it changes (at most every 2 s). Null otherwise. */
  queuePosition: number | null;
  /** Why a QUEUED generation cannot start yet beyond the work ahead of it: MODEL when no live worker serves its model (it runs once one starts). Null otherwise. */
  waitingFor: WaitingFor | null;
  /** While QUEUED: when a worker should start it, from the images ahead of it and its model's drawing rate over the last 10 minutes (images a second while drawing: idle time between requests does not count), and never before now; null when that rate is not known yet (nothing drawn lately), no worker serves the model (waitingFor MODEL), or it is not QUEUED. */
  estimatedStartAt: string | null;
  /** While QUEUED or RUNNING: when its last image should be drawn, at the same rate; null when the rate is not known yet, no worker serves the model, or it has finished. */
  estimatedFinishAt: string | null;
  /** The webhook the request gave, with each message and how its delivery went; null if none. */
  webhook: Webhook | null;
}

/** A page of your generations, newest first (Relay connection). */
export interface GenerationConnection {
  /** The generations of this page, newest first; empty when there are none. */
  edges: GenerationEdge[];
  /** Whether there is a next page, and the cursor to ask for it. */
  pageInfo: PageInfo;
}

/** One generation in a page, with its cursor. */
export interface GenerationEdge {
  /** Opaque cursor of this edge: pass it as `after` for the generations older than it. */
  cursor: string;
  /** The generation. */
  node: Generation;
}

/** What a generation draws: it decides how its images use captions, seeds and mix. */
export type GenerationKind = 'TEXT_TO_IMAGE' | 'CAPTION_INTERPOLATION' | 'STYLE_TRANSFER' | 'NOISE_INTERPOLATION';

/** Where a generation is. SUCCEEDED, FAILED and CANCELED are final: nothing changes after them. */
export type GenerationStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';

/** One finished PNG of a generation. The same caption and seed give the same pixels from the same checkpoint (ModelInfo.trainingSteps) on the same backend (a GPU may differ in the last bits); a model retrained under its name draws other pictures. */
export interface Image {
  /** Its id, a UUID: for Query.image and transferStyle(imageId). */
  id: string;
  /** Its place in the generation, from 0 to the number of images - 1. */
  index: number;
  /** Width in pixels: the model's imageSize (images are square). */
  width: number;
  /** Height in pixels: the model's imageSize (images are square). */
  height: number;
  /** The caption it was drawn from; for a caption interpolation, the nearer end (from while mix < 0.5, else to). */
  caption: string;
  /** Seed of its noise: the generation's seed + index for TEXT_TO_IMAGE (wrapping as a 32-bit integer), else the generation's seed (fromSeed for a noise interpolation). A STYLE_TRANSFER's images are drawn from the style image's S(image), not from noise: theirs is the source image's seed (0 for an upload), which does not draw them again; the style image and captions do. */
  seed: number;
  /** Interpolation weight of the second caption (or of toSeed's noise), index / (steps - 1), 0 to 1; null for TEXT_TO_IMAGE and STYLE_TRANSFER. */
  mix: number | null;
  /** Path of the PNG on this API, /images/<id>.png?t=<token>: the token is random and checked, so it cannot be guessed from the id; the file never changes (a browser may keep it for a day, shared caches not at all; Cache-Control: private, max-age=86400, immutable). Its PNG text chunks hold caption, seed, model and kind. */
  url: string;
  /** The generation it belongs to. */
  generation: Generation;
}

/** Two captions and the images in between: one noise vector, the caption embeddings mixed. */
export interface InterpolateCaptionsInput {
  /** The first caption (mix 0). Not empty and at most 500 characters (Unicode code points); control characters (newlines, tabs, NUL...) become spaces, a lone UTF-16 surrogate U+FFFD, and the ends are trimmed before it is checked and stored. Otherwise BAD_USER_INPUT. The model reads its first ModelInfo.captionCharacters characters (201 for the paper's text encoder). */
  from: string;
  /** The last caption (mix 1). Not empty and at most 500 characters (Unicode code points); control characters (newlines, tabs, NUL...) become spaces, a lone UTF-16 surrogate U+FFFD, and the ends are trimmed before it is checked and stored. Otherwise BAD_USER_INPUT. The model reads its first ModelInfo.captionCharacters characters (201 for the paper's text encoder). */
  to: string;
  /** Number of images, both ends included: 2 to 16, default 8. Image i has mix = i / (steps - 1). Outside the range is BAD_USER_INPUT. */
  steps?: number | null;
  /** Any 32-bit integer: the one noise seed of every image. Absent or null: chosen at random. */
  seed?: number | null;
  /** Name of the model to draw with (see Query.models); absent or null: the default model. An unknown name is BAD_USER_INPUT. */
  model?: string | null;
  /** Optional: a URL that ganvas POSTs this generation to (signed, Standard Webhooks) when the chosen events happen; see WebhookInput. A URL that may not be sent to is BAD_USER_INPUT and stores nothing. */
  webhook?: WebhookInput | null;
  /** Optional: a key of yours (1 to 200 characters, no control characters or lone surrogates) naming this request, so that sending it again is safe: a request with a key this API key used before answers the generation that one made, as it is now, and makes and counts nothing (a retry after a timeout, at once or days later, while that generation exists). The same key with another request (other captions, kind, number of images, or seeds, model, source image or webhook URL given) is BAD_USER_INPUT. A new request needs a new key (a UUID, say). */
  idempotencyKey?: string | null;
}

/** One caption, its noise moving from one seed to another: the same content in changing styles. */
export interface InterpolateNoiseInput {
  /** What to draw in every image. Not empty and at most 500 characters (Unicode code points); control characters (newlines, tabs, NUL...) become spaces, a lone UTF-16 surrogate U+FFFD, and the ends are trimmed before it is checked and stored. Otherwise BAD_USER_INPUT. The model reads its first ModelInfo.captionCharacters characters (201 for the paper's text encoder). */
  caption: string;
  /** Any 32-bit integer: the noise seed at mix 0. Absent or null: chosen at random. */
  fromSeed?: number | null;
  /** Any 32-bit integer but fromSeed: the noise seed at mix 1. Absent or null: chosen at random. */
  toSeed?: number | null;
  /** Number of images, both ends included: 2 to 16, default 8. Image i has mix = i / (steps - 1). Outside the range is BAD_USER_INPUT. */
  steps?: number | null;
  /** Name of the model to draw with (see Query.models); absent or null: the default model. An unknown name is BAD_USER_INPUT. */
  model?: string | null;
  /** Optional: a URL that ganvas POSTs this generation to (signed, Standard Webhooks) when the chosen events happen; see WebhookInput. A URL that may not be sent to is BAD_USER_INPUT and stores nothing. */
  webhook?: WebhookInput | null;
  /** Optional: a key of yours (1 to 200 characters, no control characters or lone surrogates) naming this request, so that sending it again is safe: a request with a key this API key used before answers the generation that one made, as it is now, and makes and counts nothing (a retry after a timeout, at once or days later, while that generation exists). The same key with another request (other captions, kind, number of images, or seeds, model, source image or webhook URL given) is BAD_USER_INPUT. A new request needs a new key (a UUID, say). */
  idempotencyKey?: string | null;
}

/** A model of the catalog: one a worker serves or has served (or in the API's MODEL_DIR). */
export interface ModelInfo {
  /** Its name (its checkpoint folder's name): pass it as `model` in a request. */
  name: string;
  /** Side of its images in pixels; they are square. */
  imageSize: number;
  /** The paper's training objective it was trained with: gan, gan-cls, gan-int or gan-int-cls. */
  variant: string;
  /** True for the model used when a request names none (exactly one is). */
  isDefault: boolean;
  /** True for random weights (npm run model:init): it proves the plumbing, not image quality. */
  untrained: boolean;
  /** GAN training steps its checkpoint has had; 0 when untrained. */
  trainingSteps: number;
  /** What it draws and how well: the first paragraph of its model card, as plain text; "" without one. */
  summary: string;
  /** How many characters of a caption it reads (201 for the paper's text encoder), lower-cased; characters outside its alphabet (for ganvas's models: a-z, digits, punctuation, space) read as one unknown symbol. A longer caption is accepted and stored whole, but only its first captionCharacters characters shape the image. */
  captionCharacters: number;
  /** Workers serving it now (a heartbeat in the last 30 s). 0: requests for it wait, QUEUED with waitingFor MODEL, until a worker for it starts. */
  workers: number;
}

/** Requests for images (answered at once with a QUEUED generation) and cancels. Outside open mode every request needs an API key (Authorization: Bearer <key>), else UNAUTHENTICATED. An operation with more than 10 fields at its top (each reads the database), a document deeper than 8 levels, selecting more than 250 fields or that may return more than 10000 objects (each list counted full: a page at its first, images at 16) is QUERY_TOO_COMPLEX. You see only your key's generations; any other id is NOT_FOUND. */
export interface Mutation {
  /** Draws count images of one caption, image i from the noise of seed + i. Returns at once with status QUEUED; follow it with generationUpdated. Bad input is BAD_USER_INPUT and stores nothing; more than your quota (new generations a minute, queued and running at once, or, where your key has a daily limit, images asked for in 24 hours) is RATE_LIMITED with extensions.retryAfterSeconds; one request for more images than the whole daily limit is BAD_USER_INPUT. */
  generateImages: Generation;
  /** Draws the images in between two captions: one noise vector, the two caption embeddings mixed with mix = i / (steps - 1). Returns at once with status QUEUED; follow it with generationUpdated. Bad input is BAD_USER_INPUT and stores nothing; more than your quota (new generations a minute, queued and running at once, or, where your key has a daily limit, images asked for in 24 hours) is RATE_LIMITED with extensions.retryAfterSeconds; one request for more images than the whole daily limit is BAD_USER_INPUT. */
  interpolateCaptions: Generation;
  /** One caption, the noise moving between two seeds: the same content in changing styles. Returns at once with status QUEUED; follow it with generationUpdated. Bad input is BAD_USER_INPUT and stores nothing; more than your quota (new generations a minute, queued and running at once, or, where your key has a daily limit, images asked for in 24 hours) is RATE_LIMITED with extensions.retryAfterSeconds; one request for more images than the whole daily limit is BAD_USER_INPUT. */
  interpolateNoise: Generation;
  /** Redraws one image's style (pose, background) with new captions, one image per caption. Returns at once with status QUEUED; follow it with generationUpdated. Bad input is BAD_USER_INPUT and stores nothing; more than your quota (new generations a minute, queued and running at once, or, where your key has a daily limit, images asked for in 24 hours) is RATE_LIMITED with extensions.retryAfterSeconds; one request for more images than the whole daily limit is BAD_USER_INPUT. An imageId that does not exist, or is another key's, is NOT_FOUND. */
  transferStyle: Generation;
  /** Stops a generation and returns it CANCELED: a queued one at once, a running one before its next image (images drawn before stay). One already CANCELED is returned as it is (a cancel sent again); one that SUCCEEDED or FAILED is BAD_USER_INPUT; an unknown id is NOT_FOUND. */
  cancelGeneration: Generation;
  /** Deletes one of your generations and its images, and returns its id; a queued or running one stops first (before its next image). Its image URLs answer 404 from then on and its subscribers get NOT_FOUND. An unknown id is NOT_FOUND. */
  deleteGeneration: string;
  /** Deletes every one of your generations that matches the filter, as deleteGeneration does, and returns how many. */
  deleteGenerations: number;
}

/** Where a page of a connection starts and ends (Relay cursor pagination, forward only: first and after; newer items are read again from the top, the newest first). */
export interface PageInfo {
  /** True when there are more items after this page: ask again with after: endCursor. */
  hasNextPage: boolean;
  /** True when the page was asked for with after (the items up to that cursor come before it); false on the first page. Paging backwards (last, before) is not offered. */
  hasPreviousPage: boolean;
  /** Cursor of the first edge of this page; null when the page is empty. */
  startCursor: string | null;
  /** Cursor of the last edge of this page; null when the page is empty. */
  endCursor: string | null;
}

/** Reads: your generations and images, and the models served. Outside open mode every request needs an API key (Authorization: Bearer <key>), else UNAUTHENTICATED. An operation with more than 10 fields at its top (each reads the database), a document deeper than 8 levels, selecting more than 250 fields or that may return more than 10000 objects (each list counted full: a page at its first, images at 16) is QUERY_TOO_COMPLEX. You see only your key's generations; any other id is NOT_FOUND. */
export interface Query {
  /** One of your generations. An id that does not exist, or is another key's, is NOT_FOUND. */
  generation: Generation | null;
  /** Your generations, newest first, a page at a time (Relay connection, forward: first and after), optionally filtered by status, kind, creation time and ids. */
  generations: GenerationConnection;
  /** The model catalog, default first: every model a worker serves or has served (workers: how many serve it now); the one with isDefault is used when a request names none. */
  models: ModelInfo[];
  /** Your generations and images per UTC day, kind and model, oldest day first; generations you deleted no longer count. At most 366 days at once, else BAD_USER_INPUT. */
  usage: UsageDay[];
  /** Your limits and what you use of each now: new generations a minute, generations queued or running at once, images in 24 hours. */
  quota: Quota;
  /** The secret your webhook messages are signed with (your API key's; the server's in open mode), whsec_ + base64, for any Standard Webhooks library. npm run key:rotate-secret replaces it; the old one signs too for 24 hours. */
  webhookSecret: string;
  /** One image of your generations. An id that does not exist, or is another key's, is NOT_FOUND. */
  image: Image | null;
}

/** Your limits (your API key's own, else the server's) and what you use of each now, as a new request is counted against them: over one of them it is RATE_LIMITED. */
export interface Quota {
  /** New generations you may create in a minute. */
  perMinute: number;
  /** Generations you created in the last 60 seconds, by whole seconds: one counts until its second has left. */
  requestsLastMinute: number;
  /** Generations you may have QUEUED or RUNNING at once. */
  queued: number;
  /** Your generations QUEUED or RUNNING now. */
  queuedNow: number;
  /** Images you may ask for in 24 hours; null: no daily limit. */
  imagesPerDay: number | null;
  /** Images you asked for in the last 24 hours, by whole minutes: one counts until its minute has left (deleted generations and failed ones count too). */
  imagesLast24h: number;
}

/** Live generations over graphql-ws on the same /graphql URL; the key goes in the connection_init payload as { "authorization": "Bearer <key>" }. A socket runs a limited number of operations at once; more are RATE_LIMITED. */
export interface Subscription {
  /** A generation live (graphql-ws, same URL): its state at once, then its latest state after each change (status, progress, new images; changes that land together come as one message, and one that changes nothing selected sends none); completes when it is SUCCEEDED, FAILED or CANCELED. An unknown id is NOT_FOUND at once. */
  generationUpdated: Generation;
}

/** New captions drawn in the style (pose, background) of one image: give exactly one of imageId and image, else BAD_USER_INPUT. */
export interface TransferStyleInput {
  /** Id of an image of one of your generations (its pixels are copied into the request: deleting it after does not affect the transfer). One that does not exist (or is another key's) is NOT_FOUND; a malformed id is BAD_USER_INPUT. */
  imageId?: string | null;
  /** An uploaded PNG or JPEG, base64 or a data:image/png|jpeg;base64 URL: at most 700000 bytes decoded, from 8x8 to 2048x2048 pixels, the whole file (one cut short, as a truncated base64 string makes, is refused); anything else is BAD_USER_INPUT. Its centred square is taken (a portrait or landscape image is cropped, not squashed) and resized to the model's imageSize. */
  image?: string | null;
  /** The captions to draw, one image each: 1 to 16 of them, each not empty and at most 500 characters (control characters become spaces, then trimmed). Otherwise BAD_USER_INPUT. */
  captions: string[];
  /** Name of the model to draw with; absent or null: the source image's model (for imageId) or the default model (for an upload). An unknown name is BAD_USER_INPUT. */
  model?: string | null;
  /** Optional: a URL that ganvas POSTs this generation to (signed, Standard Webhooks) when the chosen events happen; see WebhookInput. A URL that may not be sent to is BAD_USER_INPUT and stores nothing. */
  webhook?: WebhookInput | null;
  /** Optional: a key of yours (1 to 200 characters, no control characters or lone surrogates) naming this request, so that sending it again is safe: a request with a key this API key used before answers the generation that one made, as it is now, and makes and counts nothing (a retry after a timeout, at once or days later, while that generation exists). The same key with another request (other captions, kind, number of images, or seeds, model, source image or webhook URL given) is BAD_USER_INPUT. A new request needs a new key (a UUID, say). */
  idempotencyKey?: string | null;
}

/** Your use of one UTC day, for one kind of generation and one model. */
export interface UsageDay {
  /** The UTC day, YYYY-MM-DD, the generations were created on. */
  day: string;
  /** The kind of generation. */
  kind: GenerationKind;
  /** The model that drew them. */
  model: string;
  /** Generations created (that still exist). */
  generations: number;
  /** Images of them stored so far. */
  images: number;
}

/** What a QUEUED generation waits for besides the work ahead of it. */
export type WaitingFor = 'MODEL';

/** A generation's webhook: where its messages go, which events, and each message. */
export interface Webhook {
  /** The URL messages are POSTed to. */
  url: string;
  /** The events it is told of. */
  events: WebhookEvent[];
  /** Its messages so far, oldest first. */
  deliveries: WebhookDelivery[];
}

/** One webhook message about a generation, and how its delivery went. */
export interface WebhookDelivery {
  /** Its id: the webhook-id header, the same on every attempt (drop repeats by it). */
  id: string;
  /** The event it announces. */
  event: WebhookEvent;
  /** Pending, delivered or failed for good. */
  status: DeliveryStatus;
  /** Attempts made so far. */
  attempts: number;
  /** The receiver's HTTP status at the last attempt; null if none. */
  lastStatusCode: number | null;
  /** Why the last attempt failed (no answer, timeout, status); null once delivered. */
  lastError: string | null;
  /** When the event happened (UTC). */
  createdAt: string;
  /** When it is (or was last) due to be sent (UTC). */
  nextAttemptAt: string;
  /** When the receiver accepted it (UTC); null before. */
  deliveredAt: string | null;
}

/** What a webhook is told of; each message is the generation as JSON, with its type. */
export type WebhookEvent = 'STARTED' | 'IMAGE' | 'COMPLETED';

/** Where to POST a generation as it changes. Each message is JSON {type, timestamp, data: {generation, image}} signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature headers) with the API key's secret (Query.webhookSecret). Delivered at least once: a receiver that does not answer 2xx in time is tried again with growing delays for the server's WEBHOOK_RETRY_FOR_SECONDS after its event (a day by default; drop repeats by webhook-id); redirects are not followed. */
export interface WebhookInput {
  /** An http or https URL, at most 2048 characters, without user name or password, whose host resolves to public addresses (private and loopback ones only where the server sets WEBHOOK_ALLOW_PRIVATE=1, as npm start on localhost does). Otherwise BAD_USER_INPUT; a host the DNS failed to look up (a timeout, a server failure) is SERVICE_UNAVAILABLE with retryAfterSeconds: send it again. */
  url: string;
  /** The events to send; default [COMPLETED]. An empty list is BAD_USER_INPUT. */
  events?: WebhookEvent[] | null;
}
