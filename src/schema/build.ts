/** The executable schema: every resolver, DateTime from graphql-scalars, and this instance's pubsub. */
import { DateTimeResolver } from 'graphql-scalars';
import type { GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import type { GenerationPubSub } from '../events/bridge.ts';
import { GenerationResolver } from './generation.resolver.ts';
import { ImageResolver } from './image.resolver.ts';

export function buildGanvasSchema(pubsub: GenerationPubSub): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [GenerationResolver, ImageResolver],
    pubSub: pubsub,
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    validate: false,
    emitSchemaFile: false,
  });
}
