/**
 * The public GraphQL types. Glossary: a *generation* is one request (text to image, caption
 * interpolation or style transfer) and its images; a *job* is its place in the queue; a *caption
 * embedding* is phi(t); a *style vector* is S(image), the z that redraws an image's pose and background.
 * Every type, field, argument and enum value has a description for API users (test/schema-docs.test.ts);
 * the limits in them are read from the constants the service checks, so they stay true.
 */
import 'reflect-metadata';
import { ArgsType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DeliveryStatus, GenerationKind, GenerationStatus, WebhookEvent } from '../db/generated/enums.ts';
import { LIMITS } from '../generations/limits.ts';
import type { QuotaStanding } from '../generations/admission.ts';
import type { ModelInfo as ServedModel } from '../generations/models.ts';
import type * as Requests from '../generations/service.ts';
import { MAX_UPLOAD_BYTES, MAX_UPLOAD_SIDE } from '../images/upload.ts';
import { MAX_URL_LENGTH } from '../webhooks/target.ts';

const { captionLength, count, steps, captions, pageSize } = LIMITS;
const range = (r: { min: number; max: number }) => `${r.min} to ${r.max}`;

/** What every caption argument accepts. */
const CAPTION_RULES =
  `Not empty and at most ${captionLength} characters (Unicode code points); control characters (newlines, tabs, ` +
  'NUL...) become spaces, a lone UTF-16 surrogate U+FFFD, and the ends are trimmed before it is checked and stored. ' +
  'Otherwise BAD_USER_INPUT. ' +
  "The model reads its first ModelInfo.captionCharacters characters (201 for the paper's text encoder).";
const MODEL_ARG =
  'Name of the model to draw with (see Query.models); absent or null: the default model. ' +
  'An unknown name is BAD_USER_INPUT.';
const WEBHOOK_ARG =
  'Optional: a URL that ganvas POSTs this generation to (signed, Standard Webhooks) when the chosen events ' +
  'happen; see WebhookInput. A URL that may not be sent to is BAD_USER_INPUT and stores nothing.';
const IDEMPOTENCY_ARG =
  'Optional: a key of yours (1 to 200 characters, no control characters or lone surrogates) naming this request, so that sending it again is safe: a ' +
  'request with a key this API key used before answers the generation that one made, as it is now, and makes ' +
  'and counts nothing (a retry after a timeout, at once or days later, while that generation exists). The same key ' +
  'with another request (other captions, kind, number of images, or seeds, model, source image or webhook URL given) ' +
  'is BAD_USER_INPUT. A new request needs a new key (a UUID, say).';
const STEPS_ARG =
  `Number of images, both ends included: ${range(steps)}, default ${steps.default}. ` +
  'Image i has mix = i / (steps - 1). Outside the range is BAD_USER_INPUT.';

registerEnumType(GenerationKind, {
  name: 'GenerationKind',
  description: 'What a generation draws: it decides how its images use captions, seeds and mix.',
  valuesConfig: {
    TEXT_TO_IMAGE: { description: 'generateImages: one caption, image i drawn from the noise of seed + i.' },
    CAPTION_INTERPOLATION: {
      description:
        'interpolateCaptions: one noise vector (seed), the two caption embeddings mixed with ' +
        'mix = i / (steps - 1).',
    },
    STYLE_TRANSFER: {
      description: 'transferStyle: each new caption drawn with the style (pose, background) of one image.',
    },
    NOISE_INTERPOLATION: {
      description: 'interpolateNoise: one caption, the noise moving from seed to endSeed with mix = i / (steps - 1).',
    },
  },
});
registerEnumType(WebhookEvent, {
  name: 'WebhookEvent',
  description: 'What a webhook is told of; each message is the generation as JSON, with its type.',
  valuesConfig: {
    STARTED: { description: 'generation.started: a worker started drawing it (status RUNNING).' },
    IMAGE: { description: 'generation.image: one image was stored (data.image is it), one message per image.' },
    COMPLETED: { description: 'generation.completed: it reached SUCCEEDED, FAILED or CANCELED.' },
  },
});
registerEnumType(DeliveryStatus, {
  name: 'DeliveryStatus',
  description: 'Where one webhook message is.',
  valuesConfig: {
    PENDING: {
      description:
        'Not delivered yet: being sent, waiting for its next attempt (nextAttemptAt), or waiting for an earlier ' +
        'message of its generation to be delivered or given up (they go one at a time, in order).',
    },
    DELIVERED: { description: 'Final: the receiver answered 2xx.' },
    FAILED: {
      description:
        'Final: no 2xx answer until the retry period ran out, or its API key was revoked before it was sent (lastError says the last reason).',
    },
  },
});
export enum WaitingFor {
  MODEL = 'MODEL',
}
registerEnumType(WaitingFor, {
  name: 'WaitingFor',
  description: 'What a QUEUED generation waits for besides the work ahead of it.',
  valuesConfig: { MODEL: { description: 'A worker for its model: none serves it now.' } },
});
registerEnumType(GenerationStatus, {
  name: 'GenerationStatus',
  description: 'Where a generation is. SUCCEEDED, FAILED and CANCELED are final: nothing changes after them.',
  valuesConfig: {
    QUEUED: { description: 'Accepted and waiting for a worker; no images yet.' },
    RUNNING: {
      description:
        'A worker took it: drawing it (images arrive a pass at a time), or waiting to retry a failed attempt (3 ' +
        "attempts in all) or for a stopped worker's lease to run out before another takes it.",
    },
    SUCCEEDED: { description: 'Final: every image is drawn and progress is 1.' },
    FAILED: { description: 'Final: its last attempt failed; `error` says why. Images drawn before stay.' },
    CANCELED: { description: 'Final: cancelGeneration stopped it; images drawn before stay.' },
  },
});

@ObjectType({ description: 'One request (text to image, an interpolation or a style transfer) and its images.' })
export class Generation {
  @Field(() => ID, { description: 'Its id, a UUID: for generation, generationUpdated and cancelGeneration.' })
  id: string;

  @Field(() => GenerationKind, { description: 'Which mutation made it, and so how its images use captions and seeds.' })
  kind: GenerationKind;

  @Field(() => GenerationStatus, { description: 'Where it is now; SUCCEEDED, FAILED and CANCELED are final.' })
  status: GenerationStatus;

  @Field(() => [String], {
    description:
      'The captions as stored (control characters as spaces, trimmed): one caption; the two ends of an ' +
      'interpolation (from, to); the new captions of a style transfer, one per image.',
  })
  captions: string[];

  @Field(() => Int, {
    description:
      'The noise seed: image i of TEXT_TO_IMAGE uses seed + i; interpolations keep it ' +
      "(fromSeed for noise); a style transfer has its source image's seed, or 0 for an upload (its images are drawn " +
      'from the style image, not from noise). ' +
      'Random (0 to 2^31 - 2) when the request gives none.',
  })
  seed: number;

  @Field(() => Int, {
    nullable: true,
    description: 'The second noise seed (toSeed) of a NOISE_INTERPOLATION; null otherwise.',
  })
  endSeed: number | null;

  @Field({ description: 'Name of the model that draws it (one of Query.models).' })
  model: string;

  @Field(() => String, {
    nullable: true,
    description: 'Why it FAILED, in words for people (never a stack trace); null unless status is FAILED.',
  })
  error: string | null;

  @Field(() => Int, {
    description:
      'Images it makes: count, steps, or one per caption of a STYLE_TRANSFER (images holds those drawn so far).',
  })
  imageCount: number;

  @Field(() => Float, {
    description: 'Share of its images drawn, 0 to 1 (images stored / imageCount); 1 once SUCCEEDED.',
  })
  progress: number;

  @Field(() => ID, {
    nullable: true,
    description:
      'The image a STYLE_TRANSFER drew in the style of, when given by imageId (it may since have been deleted); ' +
      'null for an uploaded image and other kinds.',
  })
  styleImageId: string | null;

  @Field({ description: 'When the request was accepted (UTC, millisecond precision). Lists are newest first by it.' })
  createdAt: Date;

  @Field(() => Date, { nullable: true, description: 'When a worker started drawing it (UTC); null while QUEUED.' })
  startedAt: Date | null;

  @Field(() => Date, {
    nullable: true,
    description: 'When it reached SUCCEEDED, FAILED or CANCELED (UTC); null before.',
  })
  finishedAt: Date | null;

  @Field(() => String, { nullable: true, description: 'The idempotencyKey its request carried; null if none.' })
  idempotencyKey: string | null;
  // images, animationUrl and webhook: resolved by GenerationResolver
  webhookUrl: string | null;
  webhookEvents: WebhookEvent[];
}

/**
 * A generation row as a Generation object. type-graphql hands a field resolver's @Root() a copy of a plain object
 * (a new one per field), so what context.ts keeps per object (images, estimates) is shared by the fields and the
 * subscribers of one row only when the row is already a Generation.
 */
export const asGeneration = <T extends object>(row: T): Generation & T => Object.assign(new Generation(), row);

@ObjectType({ description: 'One webhook message about a generation, and how its delivery went.' })
export class WebhookDelivery {
  @Field(() => ID, { description: 'Its id: the webhook-id header, the same on every attempt (drop repeats by it).' })
  id: string;

  @Field(() => WebhookEvent, { description: 'The event it announces.' })
  event: WebhookEvent;

  @Field(() => DeliveryStatus, { description: 'Pending, delivered or failed for good.' })
  status: DeliveryStatus;

  @Field(() => Int, { description: 'Attempts made so far.' })
  attempts: number;

  @Field(() => Int, { nullable: true, description: "The receiver's HTTP status at the last attempt; null if none." })
  lastStatusCode: number | null;

  @Field(() => String, {
    nullable: true,
    description: 'Why the last attempt failed (no answer, timeout, status); null once delivered.',
  })
  lastError: string | null;

  @Field({ description: 'When the event happened (UTC).' })
  createdAt: Date;

  @Field({ description: 'When it is (or was last) due to be sent (UTC).' })
  nextAttemptAt: Date;

  @Field(() => Date, { nullable: true, description: 'When the receiver accepted it (UTC); null before.' })
  deliveredAt: Date | null;
}

@ObjectType({ description: "A generation's webhook: where its messages go, which events, and each message." })
export class Webhook {
  @Field({ description: 'The URL messages are POSTed to.' })
  url: string;

  @Field(() => [WebhookEvent], { description: 'The events it is told of.' })
  events: WebhookEvent[];

  @Field(() => [WebhookDelivery], { description: 'Its messages so far, oldest first.' })
  deliveries: WebhookDelivery[];
}

@ObjectType({
  description:
    'One finished PNG of a generation. The same caption and seed give the same pixels from the same checkpoint ' +
    '(ModelInfo.trainingSteps) on the same backend (a GPU may differ in the last bits); a model retrained under ' +
    'its name draws other pictures.',
})
export class Image {
  @Field(() => ID, { description: 'Its id, a UUID: for Query.image and transferStyle(imageId).' })
  id: string;

  @Field(() => Int, { description: 'Its place in the generation, from 0 to the number of images - 1.' })
  index: number;

  @Field(() => Int, { description: "Width in pixels: the model's imageSize (images are square)." })
  width: number;

  @Field(() => Int, { description: "Height in pixels: the model's imageSize (images are square)." })
  height: number;

  @Field({
    description:
      'The caption it was drawn from; for a caption interpolation, the nearer end ' +
      '(from while mix < 0.5, else to).',
  })
  caption: string;

  @Field(() => Int, {
    description:
      "Seed of its noise: the generation's seed + index for TEXT_TO_IMAGE (wrapping as a 32-bit " +
      "integer), else the generation's seed (fromSeed for a noise interpolation). A STYLE_TRANSFER's images " +
      "are drawn from the style image's S(image), not from noise: theirs is the source image's seed (0 for an " +
      'upload), which does not draw them again; the style image and captions do.',
  })
  seed: number;

  @Field(() => Float, {
    nullable: true,
    description:
      "Interpolation weight of the second caption (or of toSeed's noise), index / (steps - 1), 0 to 1; " +
      'null for TEXT_TO_IMAGE and STYLE_TRANSFER.',
  })
  mix: number | null;

  @Field({
    description:
      'Path of the PNG on this API, /images/<id>.png?t=<token>: the token is random and checked, so it ' +
      'cannot be guessed from the id; the file never changes (a browser may keep it for a day, shared caches not at ' +
      'all; Cache-Control: private, max-age=86400, immutable). Its PNG text chunks hold caption, ' +
      'seed, model and kind.',
  })
  url: string;

  generationId: string;
  token: string;
  // generation: resolved by ImageResolver
}

@ObjectType({
  description: "A model of the catalog: one a worker serves or has served (or in the API's MODEL_DIR).",
})
export class ModelInfo implements ServedModel {
  @Field({ description: "Its name (its checkpoint folder's name): pass it as `model` in a request." })
  name: string;

  @Field(() => Int, { description: 'Side of its images in pixels; they are square.' })
  imageSize: number;

  @Field({ description: "The paper's training objective it was trained with: gan, gan-cls, gan-int or gan-int-cls." })
  variant: string;

  @Field({ description: 'True for the model used when a request names none (exactly one is).' })
  isDefault: boolean;

  @Field({ description: 'True for random weights (npm run model:init): it proves the plumbing, not image quality.' })
  untrained: boolean;

  @Field(() => Int, { description: 'GAN training steps its checkpoint has had; 0 when untrained.' })
  trainingSteps: number;

  @Field({
    description: 'What it draws and how well: the first paragraph of its model card, as plain text; "" without one.',
  })
  summary: string;

  @Field(() => Int, {
    description:
      "How many characters of a caption it reads (201 for the paper's text encoder), lower-cased; characters " +
      "outside its alphabet (for ganvas's models: a-z, digits, punctuation, space) read as one unknown symbol. " +
      'A longer caption is accepted ' +
      'and stored whole, but only its first captionCharacters characters shape the image.',
  })
  captionCharacters: number;

  @Field(() => Int, {
    description:
      'Workers serving it now (a heartbeat in the last 30 s). 0: requests for it wait, QUEUED with ' +
      'waitingFor MODEL, until a worker for it starts.',
  })
  workers: number;
}

@ObjectType({
  description:
    'Where a page of a connection starts and ends (Relay cursor pagination, forward only: first and after; ' +
    'newer items are read again from the top, the newest first).',
})
export class PageInfo {
  @Field({ description: 'True when there are more items after this page: ask again with after: endCursor.' })
  hasNextPage: boolean;

  @Field({
    description:
      'True when the page was asked for with after (the items up to that cursor come before it); false on the ' +
      'first page. Paging backwards (last, before) is not offered.',
  })
  hasPreviousPage: boolean;

  @Field(() => String, {
    nullable: true,
    description: 'Cursor of the first edge of this page; null when the page is empty.',
  })
  startCursor: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Cursor of the last edge of this page; null when the page is empty.',
  })
  endCursor: string | null;
}

@ObjectType({ description: 'One generation in a page, with its cursor.' })
export class GenerationEdge {
  @Field({ description: 'Opaque cursor of this edge: pass it as `after` for the generations older than it.' })
  cursor: string;

  @Field(() => Generation, { description: 'The generation.' })
  node: Generation;
}

@ObjectType({ description: 'A page of your generations, newest first (Relay connection).' })
export class GenerationConnection {
  @Field(() => [GenerationEdge], {
    description: 'The generations of this page, newest first; empty when there are none.',
  })
  edges: GenerationEdge[];

  @Field(() => PageInfo, { description: 'Whether there is a next page, and the cursor to ask for it.' })
  pageInfo: PageInfo;
}

@InputType({
  description:
    'Where to POST a generation as it changes. Each message is JSON {type, timestamp, data: {generation, ' +
    'image}} signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature headers) with ' +
    "the API key's secret (Query.webhookSecret). Delivered at least once: a receiver that does not answer 2xx " +
    "in time is tried again with growing delays for the server's WEBHOOK_RETRY_FOR_SECONDS after its event (a day " +
    'by default; drop repeats by webhook-id); redirects are not followed.',
})
export class WebhookInput implements Requests.WebhookInput {
  @Field({
    description:
      `An http or https URL, at most ${MAX_URL_LENGTH} characters, without user name or password, whose ` +
      'host resolves to public addresses (private and loopback ones only where the server sets ' +
      'WEBHOOK_ALLOW_PRIVATE=1, as npm start on localhost does). Otherwise BAD_USER_INPUT; a host the DNS failed ' +
      'to look up (a timeout, a server failure) is SERVICE_UNAVAILABLE with retryAfterSeconds: send it again.',
  })
  url: string;

  @Field(() => [WebhookEvent], {
    nullable: true,
    defaultValue: ['COMPLETED'],
    description: 'The events to send; default [COMPLETED]. An empty list is BAD_USER_INPUT.',
  })
  events?: WebhookEvent[] | null;
}

@InputType({ description: 'A caption to draw count images of, each from its own noise seed.' })
export class GenerateImagesInput implements Requests.GenerateImagesInput {
  @Field({ description: `What to draw. ${CAPTION_RULES}` })
  caption: string;

  @Field(() => Int, {
    nullable: true,
    defaultValue: count.default,
    description: `How many images, ${range(count)} (default ${count.default}). Outside the range is BAD_USER_INPUT.`,
  })
  count?: number | null;

  @Field(() => Int, {
    nullable: true,
    description:
      'Any 32-bit integer; image i uses the noise of seed + i, so a seed gives the same images again. ' +
      'Absent or null: chosen at random (Generation.seed tells it).',
  })
  seed?: number | null;

  @Field(() => String, { nullable: true, description: MODEL_ARG })
  model?: string | null;

  @Field(() => WebhookInput, { nullable: true, description: WEBHOOK_ARG })
  webhook?: WebhookInput | null;

  @Field(() => String, { nullable: true, description: IDEMPOTENCY_ARG })
  idempotencyKey?: string | null;
}

@InputType({ description: 'Two captions and the images in between: one noise vector, the caption embeddings mixed.' })
export class InterpolateCaptionsInput implements Requests.InterpolateCaptionsInput {
  @Field({ description: `The first caption (mix 0). ${CAPTION_RULES}` })
  from: string;

  @Field({ description: `The last caption (mix 1). ${CAPTION_RULES}` })
  to: string;

  @Field(() => Int, { nullable: true, defaultValue: steps.default, description: STEPS_ARG })
  steps?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Any 32-bit integer: the one noise seed of every image. Absent or null: chosen at random.',
  })
  seed?: number | null;

  @Field(() => String, { nullable: true, description: MODEL_ARG })
  model?: string | null;

  @Field(() => WebhookInput, { nullable: true, description: WEBHOOK_ARG })
  webhook?: WebhookInput | null;

  @Field(() => String, { nullable: true, description: IDEMPOTENCY_ARG })
  idempotencyKey?: string | null;
}

@InputType({
  description: 'One caption, its noise moving from one seed to another: the same content in changing styles.',
})
export class InterpolateNoiseInput implements Requests.InterpolateNoiseInput {
  @Field({ description: `What to draw in every image. ${CAPTION_RULES}` })
  caption: string;

  @Field(() => Int, {
    nullable: true,
    description: 'Any 32-bit integer: the noise seed at mix 0. Absent or null: chosen at random.',
  })
  fromSeed?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'Any 32-bit integer but fromSeed: the noise seed at mix 1. Absent or null: chosen at random.',
  })
  toSeed?: number | null;

  @Field(() => Int, { nullable: true, defaultValue: steps.default, description: STEPS_ARG })
  steps?: number | null;

  @Field(() => String, { nullable: true, description: MODEL_ARG })
  model?: string | null;

  @Field(() => WebhookInput, { nullable: true, description: WEBHOOK_ARG })
  webhook?: WebhookInput | null;

  @Field(() => String, { nullable: true, description: IDEMPOTENCY_ARG })
  idempotencyKey?: string | null;
}

@InputType({
  description:
    'New captions drawn in the style (pose, background) of one image: give exactly one of imageId ' +
    'and image, else BAD_USER_INPUT.',
})
export class TransferStyleInput implements Requests.TransferStyleInput {
  @Field(() => ID, {
    nullable: true,
    description:
      'Id of an image of one of your generations (its pixels are copied into the request: deleting it after ' +
      "does not affect the transfer). One that does not exist (or is another key's) is NOT_FOUND; a malformed " +
      'id is BAD_USER_INPUT.',
  })
  imageId?: string | null;

  @Field(() => String, {
    nullable: true,
    description:
      'An uploaded PNG or JPEG, base64 or a data:image/png|jpeg;base64 URL: ' +
      `at most ${MAX_UPLOAD_BYTES} bytes decoded, from 8x8 to ${MAX_UPLOAD_SIDE}x${MAX_UPLOAD_SIDE} pixels, ` +
      'the whole file (one cut short, as a truncated base64 string makes, is refused); anything else is BAD_USER_INPUT. ' +
      "Its centred square is taken (a portrait or landscape image is cropped, not squashed) and resized to the model's imageSize.",
  })
  image?: string | null;

  @Field(() => [String], {
    description:
      `The captions to draw, one image each: ${range(captions)} of them, each not empty and at most ` +
      `${captionLength} characters (control characters become spaces, then trimmed). Otherwise BAD_USER_INPUT.`,
  })
  captions: string[];

  @Field(() => String, {
    nullable: true,
    description:
      "Name of the model to draw with; absent or null: the source image's model (for imageId) " +
      'or the default model (for an upload). An unknown name is BAD_USER_INPUT.',
  })
  model?: string | null;

  @Field(() => WebhookInput, { nullable: true, description: WEBHOOK_ARG })
  webhook?: WebhookInput | null;

  @Field(() => String, { nullable: true, description: IDEMPOTENCY_ARG })
  idempotencyKey?: string | null;
}

@ArgsType()
export class GenerationsArgs implements Requests.PageArgs {
  @Field(() => Int, {
    nullable: true,
    defaultValue: pageSize.default,
    description: `Page size, ${range(pageSize)} (default ${pageSize.default}). Outside the range is BAD_USER_INPUT.`,
  })
  first?: number | null;

  @Field(() => String, {
    nullable: true,
    description:
      'A cursor (GenerationEdge.cursor or PageInfo.endCursor): the page starts after it. ' +
      'Absent: from the newest. A string that is not a cursor from this API is BAD_USER_INPUT.',
  })
  after?: string | null;

  @Field(() => GenerationStatus, { nullable: true, description: 'Only generations with this status; absent: any.' })
  status?: GenerationStatus | null;

  @Field(() => GenerationKind, { nullable: true, description: 'Only generations of this kind; absent: any.' })
  kind?: GenerationKind | null;

  @Field(() => Date, {
    nullable: true,
    description:
      'Only generations created before this instant (UTC); absent: any. With status and kind, it lists what ' +
      'deleteGenerations with the same filter would delete.',
  })
  createdBefore?: Date | null;

  @Field(() => [ID], {
    nullable: true,
    description:
      `Only these generations (at most ${pageSize.max} ids, each a UUID, else BAD_USER_INPUT): with first at ` +
      'least their number, one page reads all the generations an app keeps track of. An id that does not exist, ' +
      "or is another key's, is left out; absent: any.",
  })
  ids?: string[] | null;
}

@InputType({
  description:
    'Which of your generations deleteGenerations deletes: those matching every field given (at least one, ' +
    'else BAD_USER_INPUT).',
})
export class DeleteGenerationsInput implements Requests.DeleteArgs {
  @Field(() => GenerationStatus, { nullable: true, description: 'Only generations with this status.' })
  status?: GenerationStatus | null;

  @Field(() => GenerationKind, { nullable: true, description: 'Only generations of this kind.' })
  kind?: GenerationKind | null;

  @Field(() => Date, {
    nullable: true,
    description: 'Only generations created before this instant (UTC); the current time selects them all.',
  })
  createdBefore?: Date | null;
}

@ObjectType({
  description:
    "Your limits (your API key's own, else the server's) and what you use of each now, as a new request is " +
    'counted against them: over one of them it is RATE_LIMITED.',
})
export class Quota implements QuotaStanding {
  @Field(() => Int, { description: 'New generations you may create in a minute.' })
  perMinute: number;

  @Field(() => Int, {
    description:
      'Generations you created in the last 60 seconds, by whole seconds: one counts until its second has left.',
  })
  requestsLastMinute: number;

  @Field(() => Int, { description: 'Generations you may have QUEUED or RUNNING at once.' })
  queued: number;

  @Field(() => Int, { description: 'Your generations QUEUED or RUNNING now.' })
  queuedNow: number;

  @Field(() => Int, { nullable: true, description: 'Images you may ask for in 24 hours; null: no daily limit.' })
  imagesPerDay: number | null;

  @Field(() => Int, {
    description:
      'Images you asked for in the last 24 hours, by whole minutes: one counts until its minute has left ' +
      '(deleted generations and failed ones count too).',
  })
  imagesLast24h: number;
}

@ObjectType({ description: 'Your use of one UTC day, for one kind of generation and one model.' })
export class UsageDay implements Requests.UsageRow {
  @Field({ description: 'The UTC day, YYYY-MM-DD, the generations were created on.' })
  day: string;

  @Field(() => GenerationKind, { description: 'The kind of generation.' })
  kind: GenerationKind;

  @Field({ description: 'The model that drew them.' })
  model: string;

  @Field(() => Int, { description: 'Generations created (that still exist).' })
  generations: number;

  @Field(() => Int, { description: 'Images of them stored so far.' })
  images: number;
}
