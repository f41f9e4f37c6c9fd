import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from './context.ts';
import { Generation, Image } from './types.ts';

@Resolver(() => Image)
export class ImageResolver {
  @Query(() => Image, { nullable: true, description: 'NOT_FOUND error for an id that does not exist.' })
  image(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.service.requireImage(ctx.owner, id);
  }

  @FieldResolver(() => String, { description: 'Path of the PNG on this API, /images/<id>.png?t=<token>: unguessable, cacheable for ever.' })
  url(@Root() image: Image): string {
    return `/images/${image.id}.png?t=${image.token}`;
  }

  @FieldResolver(() => Generation)
  generation(@Root() image: Image, @Ctx() ctx: Context) {
    return ctx.service.requireGeneration(ctx.owner, image.generationId);
  }
}
