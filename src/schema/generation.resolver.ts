/** Thin resolvers: arguments in, one service call, result out. */
import { whenReachable } from '../db/unavailable.ts';
import type { GraphQLResolveInfo } from 'graphql';
import {
  Arg,
  Args,
  Ctx,
  FieldResolver,
  ID,
  Info,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
  Subscription,
} from 'type-graphql';
import type { GenerationStatus } from '../db/generated/enums.ts';
import { type ImageMeta, TERMINAL } from '../generations/service.ts';
import { watchGeneration } from '../events/bridge.ts';
import { animationPath } from '../generations/urls.ts';
import { type Context, listedImages, thenOf } from './context.ts';
import { asks } from './lookahead.ts';
import {
  asGeneration,
  DeleteGenerationsInput,
  GenerateImagesInput,
  Generation,
  GenerationConnection,
  GenerationsArgs,
  Image,
  InterpolateCaptionsInput,
  InterpolateNoiseInput,
  ModelInfo,
  Quota,
  TransferStyleInput,
  UsageDay,
  WaitingFor,
  Webhook,
} from './types.ts';

/**
 * A subscription's stream of generation ids: the current state at once (so a late subscriber is not left
 * waiting), then one per change, ending after the generation reaches a final state. The watch starts
 * before the state is read, so a change in between is seen; each change is read before it is yielded
 * (the resolver reads after, so it sees this state or a later one).
 */
async function* updatesOf(
  ctx: Context,
  g: { id: string; status: GenerationStatus },
  watch: ReturnType<typeof watchGeneration>,
): AsyncGenerator<string> {
  // while it waits, its place in the queue is pushed too (QueueWatch publishes a place that moved)
  let unfollow = g.status === 'QUEUED' ? ctx.queue.follow() : null;
  try {
    // `g` is the shared read subscribers are sent first; it may trail a change whose NOTIFY is on its way,
    // which then wakes the loop below
    yield g.id;
    if (TERMINAL.includes(g.status)) return;
    for (;;) {
      await watch.changed();
      if (watch.closed) return; // the client stopped (see stoppable)
      // the database down a moment (a restart): read again once it answers, not end the client's socket (4500)
      const now = await whenReachable(
        () => ctx.live.read(g.id),
        () => watch.closed,
      );
      if (watch.closed) return; // stopped while it read
      // followed while QUEUED: again after a worker's hand-back at shutdown put a RUNNING one back
      if (now?.status === 'QUEUED') unfollow ??= ctx.queue.follow();
      else {
        unfollow?.();
        unfollow = null;
      }
      yield g.id;
      if (!now || TERMINAL.includes(now.status)) return;
    }
  } finally {
    unfollow?.();
    watch.close();
  }
}

/**
 * `updates` whose return() (the client completed the operation, or its socket closed) closes the watch at once.
 * An async generator waiting in watch.changed() handles return() only at its next yield: until the generation
 * changed again (never, for one waiting for a model) it kept its listener and queue follow, and then sent a
 * message for an operation already over.
 */
function stoppable(updates: AsyncGenerator<string>, watch: { close(): void }): AsyncGenerator<string> {
  const stop = updates.return.bind(updates);
  updates.return = (value) => {
    watch.close();
    return stop(value);
  };
  return updates;
}

/**
 * The fields of a Generation that read its images. A generation or a page asked for any of them reads its images in
 * its own statement: a second round trip to Postgres cost the API about as much CPU as the rest of a page
 * (docs/benchmarks.md, session 38).
 */
const READS_IMAGES = ['images', 'animationUrl'];

/** What every mutation that creates a generation shares. */
const CREATES =
  'Returns at once with status QUEUED; follow it with generationUpdated. Bad input is BAD_USER_INPUT ' +
  'and stores nothing; more than your quota (new generations a minute, queued and running at once, or, where ' +
  'your key has a daily limit, images asked for in 24 hours) is RATE_LIMITED with extensions.retryAfterSeconds; ' +
  'one request for more images than the whole daily limit is BAD_USER_INPUT.';
const GENERATION_ID = 'Id of one of your generations (a UUID, any case). A malformed id is BAD_USER_INPUT.';

@Resolver(() => Generation)
export class GenerationResolver {
  @Query(() => Generation, {
    nullable: true,
    description: "One of your generations. An id that does not exist, or is another key's, is NOT_FOUND.",
  })
  async generation(
    @Arg('id', () => ID, { description: GENERATION_ID }) id: string,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ) {
    if (!asks(info, [], READS_IMAGES)) return ctx.service.requireGeneration(ctx.owner, id);
    const { row, images } = await ctx.service.requireGenerationWithImages(ctx.owner, id);
    const g = asGeneration(row); // the object its field resolvers get: what the images are primed for
    ctx.images.prime(g, images);
    return g;
  }

  @Query(() => GenerationConnection, {
    description:
      'Your generations, newest first, a page at a time (Relay connection, forward: first and after), ' +
      'optionally filtered by status, kind, creation time and ids.',
  })
  async generations(
    @Args(() => GenerationsArgs) args: GenerationsArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<GenerationConnection> {
    const query = ctx.service.pageQuery(ctx.owner, args, asks(info, ['edges', 'node'], READS_IMAGES));
    const { connection, images } = await ctx.pages.read(ctx.owner, query.key, async () => {
      const page = await ctx.service.page(query);
      // Generation objects, so that a node's images and animationUrl share one read of its images (a kept page's
      // objects are shared by the requests it answers: what a context keeps per object is kept per request)
      const edges = page.nodes.map((row) => ({ node: asGeneration(row), cursor: page.cursorOf(row) }));
      const pageInfo = {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: args.after != null,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      };
      return { connection: { edges, pageInfo }, images: page.images };
    });
    images?.forEach((of, i) => ctx.images.prime(connection.edges[i].node, of));
    return connection;
  }

  @Query(() => [ModelInfo], {
    description:
      'The model catalog, default first: every model a worker serves or has served (workers: how many serve it ' +
      'now); the one with isDefault is used when a request names none.',
  })
  async models(
    @Arg('served', () => Boolean, {
      defaultValue: false,
      description: 'true: only the models a live worker serves now.',
    })
    served: boolean,
    @Ctx() ctx: Context,
  ) {
    const models = await ctx.models.list();
    return served ? models.filter((m) => m.workers > 0) : models;
  }

  @Query(() => [UsageDay], {
    description:
      'Your generations and images per UTC day, kind and model, oldest day first; generations you deleted no ' +
      'longer count. At most 366 days at once, else BAD_USER_INPUT.',
  })
  usage(
    @Arg('from', () => Date, { nullable: true, description: 'From this instant (UTC); default: 30 days before `to`.' })
    from: Date | null,
    @Arg('to', () => Date, { nullable: true, description: 'Until this instant, excluded; default: now.' })
    to: Date | null,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.usage(ctx.owner, from, to);
  }

  @Query(() => Quota, {
    description:
      'Your limits and what you use of each now: new generations a minute, generations queued or running at ' +
      'once, images in 24 hours.',
  })
  quota(@Ctx() ctx: Context) {
    return ctx.service.quota(ctx.owner);
  }

  @Query(() => String, {
    description:
      "The secret your webhook messages are signed with (your API key's; the server's in open mode), " +
      'whsec_ + base64, for any Standard Webhooks library. npm run key:rotate-secret replaces it; the old one ' +
      'signs too for 24 hours.',
  })
  webhookSecret(@Ctx() ctx: Context) {
    return ctx.service.webhookSecret(ctx.owner);
  }

  @Mutation(() => Generation, {
    description: `Draws count images of one caption, image i from the noise of seed + i. ${CREATES}`,
  })
  generateImages(
    @Arg('input', () => GenerateImagesInput, { description: 'The caption, how many images, seed and model.' })
    input: GenerateImagesInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.generateImages(ctx.owner, input);
  }

  @Mutation(() => Generation, {
    description:
      'Draws the images in between two captions: one noise vector, the two caption embeddings mixed with ' +
      `mix = i / (steps - 1). ${CREATES}`,
  })
  interpolateCaptions(
    @Arg('input', () => InterpolateCaptionsInput, { description: 'The two captions, steps, seed and model.' })
    input: InterpolateCaptionsInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.interpolateCaptions(ctx.owner, input);
  }

  @Mutation(() => Generation, {
    description: `One caption, the noise moving between two seeds: the same content in changing styles. ${CREATES}`,
  })
  interpolateNoise(
    @Arg('input', () => InterpolateNoiseInput, { description: 'The caption, the two seeds, steps and model.' })
    input: InterpolateNoiseInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.interpolateNoise(ctx.owner, input);
  }

  @Mutation(() => Generation, {
    description:
      `Redraws one image's style (pose, background) with new captions, one image per caption. ${CREATES} ` +
      "An imageId that does not exist, or is another key's, is NOT_FOUND.",
  })
  transferStyle(
    @Arg('input', () => TransferStyleInput, { description: 'The style image (imageId or image), captions and model.' })
    input: TransferStyleInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.transferStyle(ctx.owner, input);
  }

  @Mutation(() => Generation, {
    description:
      'Stops a generation and returns it CANCELED: a queued one at once, a running one before its next ' +
      'image (images drawn before stay). One already CANCELED is returned as it is (a cancel sent again); one that ' +
      'SUCCEEDED or FAILED is BAD_USER_INPUT; an unknown id is NOT_FOUND.',
  })
  cancelGeneration(@Arg('id', () => ID, { description: GENERATION_ID }) id: string, @Ctx() ctx: Context) {
    return ctx.service.cancel(ctx.owner, id);
  }

  @Mutation(() => ID, {
    description:
      'Deletes one of your generations and its images, and returns its id; a queued or running one stops ' +
      'first (before its next image). Its image URLs answer 404 from then on and its subscribers get NOT_FOUND. ' +
      'An unknown id is NOT_FOUND.',
  })
  deleteGeneration(@Arg('id', () => ID, { description: GENERATION_ID }) id: string, @Ctx() ctx: Context) {
    return ctx.service.deleteGeneration(ctx.owner, id);
  }

  @Mutation(() => Int, {
    description:
      'Deletes every one of your generations that matches the filter, as deleteGeneration does, and ' +
      'returns how many.',
  })
  deleteGenerations(
    @Arg('filter', () => DeleteGenerationsInput, { description: 'Which generations: status, kind, createdBefore.' })
    filter: DeleteGenerationsInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.deleteGenerations(ctx.owner, filter);
  }

  @Subscription(() => Generation, {
    description:
      'A generation live (graphql-ws, same URL): its state at once, then its latest state after each change ' +
      '(status, progress, new images; changes that land together come as one message, and one that changes ' +
      'nothing selected sends none); completes when it is ' +
      'SUCCEEDED, FAILED or CANCELED. An unknown id is NOT_FOUND at once.',
    // the lookup happens before the stream starts, so an unknown id is an error the client sees at once
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const id = (args as { id: string }).id;
      const watch = watchGeneration(ctx.pubsub, id.toLowerCase());
      try {
        return stoppable(updatesOf(ctx, await ctx.live.generation(ctx.owner, id.toLowerCase()), watch), watch);
      } catch (err) {
        watch.close();
        throw err;
      }
    },
  })
  generationUpdated(
    @Root() id: string,
    @Arg('id', () => ID, { description: GENERATION_ID }) _id: string,
    @Ctx() ctx: Context,
  ) {
    return ctx.live.generation(ctx.owner, id);
  }

  @FieldResolver(() => [Image], { description: 'Images drawn so far, in index order (all of them once SUCCEEDED).' })
  images(@Root() g: Generation, @Ctx() ctx: Context): ImageMeta[] | Promise<ImageMeta[]> {
    return thenOf(ctx.images.of(g), (images) => listedImages(g, images));
  }

  @FieldResolver(() => String, {
    nullable: true,
    description:
      'Path on this API of its images as an animated PNG (150 ms a frame, there and back, looping), ' +
      'with an unguessable token; null until it has two images.',
  })
  animationUrl(@Root() g: Generation, @Ctx() ctx: Context): string | null | Promise<string | null> {
    return thenOf(ctx.images.of(g), (images) => animationPath(g.id, images));
  }

  @FieldResolver(() => Int, {
    nullable: true,
    description:
      'While QUEUED: how many generations a worker for its model takes before it (0: next), under the fair ' +
      'order across API keys; pushed over generationUpdated as it changes (at most every 2 s). Null otherwise.',
  })
  async queuePosition(@Root() g: Generation, @Ctx() ctx: Context): Promise<number | null> {
    return (await ctx.estimates.of(g)).position;
  }

  @FieldResolver(() => WaitingFor, {
    nullable: true,
    description:
      'Why a QUEUED generation cannot start yet beyond the work ahead of it: MODEL when no live worker serves ' +
      'its model (it runs once one starts). Null otherwise.',
  })
  async waitingFor(@Root() g: Generation, @Ctx() ctx: Context): Promise<'MODEL' | null> {
    return (await ctx.estimates.of(g)).waitingFor;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      "While QUEUED: when a worker should start it, from the images ahead of it and its model's drawing rate " +
      'over the last 10 minutes (images a second while drawing: idle time between requests does not count), and ' +
      'never before now; null ' +
      'when that rate is not known yet (nothing drawn lately), no worker serves the model (waitingFor MODEL), or ' +
      'it is not QUEUED.',
  })
  async estimatedStartAt(@Root() g: Generation, @Ctx() ctx: Context): Promise<Date | null> {
    return (await ctx.estimates.of(g)).estimatedStartAt;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      'While QUEUED or RUNNING: when its last image should be drawn, at the same rate; null when the rate is ' +
      'not known yet, no worker serves the model, or it has finished.',
  })
  async estimatedFinishAt(@Root() g: Generation, @Ctx() ctx: Context): Promise<Date | null> {
    return (await ctx.estimates.of(g)).estimatedFinishAt;
  }

  @FieldResolver(() => Webhook, {
    nullable: true,
    description: 'The webhook the request gave, with each message and how its delivery went; null if none.',
  })
  async webhook(@Root() g: Generation, @Ctx() ctx: Context): Promise<Webhook | null> {
    if (!g.webhookUrl) return null;
    return { url: g.webhookUrl, events: g.webhookEvents, deliveries: await ctx.deliveries.of(g) };
  }
}
