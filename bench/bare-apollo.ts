/**
 * The page's baseline in `npm run bench:service`: Apollo Server + type-graphql on express, answering the page's own
 * query (`generations(first: 20)`, edges with cursors, nodes with their image urls, pageInfo) with the answer the API
 * gave it, kept in memory: the same response without a database, a key or ganvas's own code. `node -r
 * @swc-node/register bench/bare-apollo.ts` serves BARE_PAGE (that answer as JSON) on a free port of 127.0.0.1 and
 * prints its URL, so that it runs in a process of its own as the API does (the bench's split layout).
 */
import 'reflect-metadata';
import { createServer } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { Arg, Field, ID, Int, ObjectType, Query, Resolver, buildSchema } from 'type-graphql';

@ObjectType()
class BareImage {
  @Field() url!: string;
}
@ObjectType()
class BareNode {
  @Field(() => ID) id!: string;
  @Field() status!: string;
  @Field(() => [String]) captions!: string[];
  @Field(() => [BareImage]) images!: BareImage[];
}
@ObjectType()
class BareEdge {
  @Field() cursor!: string;
  @Field(() => BareNode) node!: BareNode;
}
@ObjectType()
class BarePageInfo {
  @Field() hasNextPage!: boolean;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}
@ObjectType()
class BareConnection {
  @Field(() => [BareEdge]) edges!: BareEdge[];
  @Field(() => BarePageInfo) pageInfo!: BarePageInfo;
}

/** What it answers: a page as the API answered the bench's query. */
export type BarePage = BareConnection;

/** Serves `page`; `url` is its GraphQL endpoint. */
export async function startBareApollo(page: BarePage): Promise<{ url: string; close(): Promise<void> }> {
  @Resolver()
  class BareResolver {
    @Query(() => BareConnection)
    generations(@Arg('first', () => Int) first: number): BareConnection {
      return { edges: page.edges.slice(0, first), pageInfo: page.pageInfo };
    }
  }
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

if (require.main === module)
  void startBareApollo(JSON.parse(process.env.BARE_PAGE ?? '') as BarePage).then(({ url }) =>
    console.log(`bare Apollo at ${url}`),
  );
