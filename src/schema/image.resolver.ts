import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from './context.ts';
import { Generation, Image } from './types.ts';
import type { ImageMeta } from '../generations/service.ts';

/** An image as Generation.images returns it: with the generation it was listed under. */
export type ListedImage = ImageMeta & { listedUnder: Generation };

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
  generation(@Root() image: Image & { listedUnder?: Generation }, @Ctx() ctx: Context) {
    return image.listedUnder ?? ctx.service.requireGeneration(ctx.owner, image.generationId);
  }
}
