/** Where a generation's files are on the API: the GraphQL fields and the webhook messages give the same paths. */

/** The PNG; the token is random and checked, so the path cannot be guessed from the id. */
export const imagePath = (image: { id: string; token: string }): string => `/images/${image.id}.png?t=${image.token}`;

/** The images as an animated PNG, with the first image's token; null until there are two. */
export const animationPath = (generationId: string, images: { token: string }[]): string | null =>
  images.length >= 2 ? `/generations/${generationId}/animation.png?t=${images[0].token}` : null;
