import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import { type Context, listedUnder } from './context.ts';
import { Generation, Image } from './types.ts';
import type { ImageMeta } from '../generations/service.ts';

@Resolver(() => Image)
export class ImageResolver {
  @Query(() => Image, {
    nullable: true,
    description: "One image of your generations. An id that does not exist, or is another key's, is NOT_FOUND.",
  })
  image(
    @Arg('id', () => ID, { description: 'Id of the image (a UUID, any case). A malformed id is BAD_USER_INPUT.' })
    id: string,
    @Ctx() ctx: Context,
  ) {
    return ctx.service.requireImage(ctx.owner, id);
  }

  /** The generation an image was listed under (Generation.images) is its own: the same object, read again never. */
  @FieldResolver(() => Generation, { description: 'The generation it belongs to.' })
  generation(@Root() image: ImageMeta, @Ctx() ctx: Context) {
    return listedUnder(image) ?? ctx.service.requireGeneration(ctx.owner, image.generationId);
  }
}
