/** Thin resolvers: arguments in, one service call, result out. */
import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { GenerationStatus } from '../db/generated/enums.ts';
import { TERMINAL } from '../generations/service.ts';
import { watchGeneration } from '../events/bridge.ts';
import type { Context } from './context.ts';
import {
  GenerateImagesInput, Generation, GenerationConnection, GenerationsArgs, Image, InterpolateCaptionsInput, InterpolateNoiseInput, ModelInfo, TransferStyleInput,
} from './types.ts';

/**
 * A subscription's stream of generation ids: the current state at once (so a late subscriber is not left
 * waiting), then one per change, ending after the generation reaches a final state. The watch starts
 * before the state is read, so a change in between is seen; each change is read before it is yielded
 * (the resolver reads after, so it sees this state or a later one).
 */
async function* updatesOf(ctx: Context, g: { id: string; status: GenerationStatus }, watch: ReturnType<typeof watchGeneration>): AsyncGenerator<string> {
  try {
    yield g.id;
    if (TERMINAL.includes(g.status)) return;
    for (;;) {
      await watch.changed();
      const now = await ctx.service.generation(g.id);
      yield g.id;
      if (!now || TERMINAL.includes(now.status)) return;
    }
  } finally {
    watch.close();
  }
}

@Resolver(() => Generation)
export class GenerationResolver {
  @Query(() => Generation, { nullable: true, description: 'NOT_FOUND error for an id that does not exist.' })
  generation(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.service.requireGeneration(ctx.owner, id);
  }

  @Query(() => GenerationConnection, { description: 'Relay connection, newest first.' })
  async generations(@Args(() => GenerationsArgs) args: GenerationsArgs, @Ctx() ctx: Context): Promise<GenerationConnection> {
    const page = await ctx.service.generations(ctx.owner, args);
    const edges = page.nodes.map((node) => ({ node, cursor: page.cursorOf(node) }));
    return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
  }

  @Query(() => [ModelInfo])
  models(@Ctx() ctx: Context) {
    return ctx.models.list();
  }

  @Mutation(() => Generation, { description: 'Returns at once, status QUEUED.' })
  generateImages(@Arg('input', () => GenerateImagesInput) input: GenerateImagesInput, @Ctx() ctx: Context) {
    return ctx.service.generateImages(ctx.owner, input);
  }

  @Mutation(() => Generation)
  interpolateCaptions(@Arg('input', () => InterpolateCaptionsInput) input: InterpolateCaptionsInput, @Ctx() ctx: Context) {
    return ctx.service.interpolateCaptions(ctx.owner, input);
  }

  @Mutation(() => Generation, { description: 'One caption, the noise moving between two seeds: the same content in changing styles.' })
  interpolateNoise(@Arg('input', () => InterpolateNoiseInput) input: InterpolateNoiseInput, @Ctx() ctx: Context) {
    return ctx.service.interpolateNoise(ctx.owner, input);
  }

  @Mutation(() => Generation)
  transferStyle(@Arg('input', () => TransferStyleInput) input: TransferStyleInput, @Ctx() ctx: Context) {
    return ctx.service.transferStyle(ctx.owner, input);
  }

  @Mutation(() => Generation)
  cancelGeneration(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.service.cancel(ctx.owner, id);
  }

  @Subscription(() => Generation, {
    description: 'Every status or progress change and each new image; completes when the generation has finished.',
    // the lookup happens before the stream starts, so an unknown id is an error the client sees at once
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const id = (args as { id: string }).id;
      const watch = watchGeneration(ctx.pubsub, id.toLowerCase());
      try {
        return updatesOf(ctx, await ctx.service.requireGeneration(ctx.owner, id), watch);
      } catch (err) {
        watch.close();
        throw err;
      }
    },
  })
  generationUpdated(@Root() id: string, @Arg('id', () => ID) _id: string, @Ctx() ctx: Context) {
    return ctx.service.requireGeneration(ctx.owner, id);
  }

  @FieldResolver(() => [Image], { description: 'In index order, those finished so far.' })
  images(@Root() g: Generation, @Ctx() ctx: Context) {
    return ctx.images.of(g);
  }

  @FieldResolver(() => String, { nullable: true, description: 'The images as an animated PNG (loops there and back), once there are two.' })
  async animationUrl(@Root() g: Generation, @Ctx() ctx: Context): Promise<string | null> {
    const images = await ctx.images.of(g);
    return images.length >= 2 ? `/generations/${g.id}/animation.png?t=${images[0].token}` : null;
  }
}
