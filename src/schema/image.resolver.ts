import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import { imagePath } from '../generations/urls.ts';
import type { Context } from './context.ts';
import { Generation, Image } from './types.ts';

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

  @FieldResolver(() => String, {
    description:
      'Path of the PNG on this API, /images/<id>.png?t=<token>: the token is random and checked, so it ' +
      'cannot be guessed from the id; the file never changes (cacheable for ever). Its PNG text chunks hold caption, ' +
      'seed, model and kind.',
  })
  url(@Root() image: Image): string {
    return imagePath(image);
  }

  @FieldResolver(() => Generation, { description: 'The generation it belongs to.' })
  generation(@Root() image: Image, @Ctx() ctx: Context) {
    return ctx.service.requireGeneration(ctx.owner, image.generationId);
  }
}
