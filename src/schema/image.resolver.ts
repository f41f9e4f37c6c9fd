import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from './context.ts';
import { Generation, Image } from './types.ts';

@Resolver(() => Image)
export class ImageResolver {
  @Query(() => Image, { nullable: true, description: 'NOT_FOUND error for an id that does not exist.' })
  image(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.service.requireImage(id);
  }

  @FieldResolver(() => String, { description: 'Path of the PNG on this API, e.g. /images/<id>.png (cacheable for ever).' })
  url(@Root() image: Image): string {
    return `/images/${image.id}.png`;
  }

  @FieldResolver(() => Generation)
  generation(@Root() image: Image, @Ctx() ctx: Context) {
    return ctx.service.requireGeneration(image.generationId);
  }
}
