/**
 * The page's baseline in `npm run bench:service`: Apollo Server + type-graphql on express, a list of 20 from memory, no
 * database. `node -r @swc-node/register bench/bare-apollo.ts` serves it on a free port of 127.0.0.1 and prints its
 * URL, so that it runs in a process of its own as the API does (the bench's split layout).
 */
import 'reflect-metadata';
import { createServer } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { Arg, Field, ID, Int, ObjectType, Query, Resolver, buildSchema } from 'type-graphql';

/** The query the bench sends it: the shape of a `generations(first: 20)` page with image urls. */
export const BARE_QUERY = '{ items(first: 20) { id status captions images { url } } }';

@ObjectType()
class BareImage {
  @Field() url!: string;
}
@ObjectType()
class BareItem {
  @Field(() => ID) id!: string;
  @Field() status!: string;
  @Field(() => [String]) captions!: string[];
  @Field(() => [BareImage]) images!: BareImage[];
}
@Resolver()
class BareResolver {
  @Query(() => [BareItem])
  items(@Arg('first', () => Int) first: number): BareItem[] {
    return Array.from({ length: first }, (_, i) => ({
      id: `id-${i}`,
      status: 'SUCCEEDED',
      captions: ['a flower'],
      images: [{ url: `/images/${i}.png?t=token` }],
    }));
  }
}

/** Serves the baseline; `url` is its GraphQL endpoint. */
export async function startBareApollo(): Promise<{ url: string; close(): Promise<void> }> {
  const schema = await buildSchema({ resolvers: [BareResolver], validate: false });
  // as the API: no cache hints are set, and the plugin's per-field hook would cost every field
  const apollo = new ApolloServer({ schema, plugins: [ApolloServerPluginCacheControlDisabled()] });
  await apollo.start();
  const app = express();
  app.use('/graphql', express.json(), expressMiddleware(apollo));
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`,
    close: async () => {
      await apollo.stop();
      server.close();
    },
  };
}

if (require.main === module) void startBareApollo().then(({ url }) => console.log(`bare Apollo at ${url}`));
