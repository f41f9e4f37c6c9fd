/** The executable schema: every resolver, DateTime from graphql-scalars, and this instance's pubsub. */
import { DateTimeResolver } from 'graphql-scalars';
import { GraphQLScalarType, type GraphQLSchema, Kind } from 'graphql';
import { buildSchema } from 'type-graphql';
import { LIST_BOUND, MAX_DEPTH, MAX_FIELDS, MAX_NODES, MAX_TOP_FIELDS } from './query-limits.ts';
import type { GenerationPubSub } from '../events/bridge.ts';
import { GenerationResolver } from './generation.resolver.ts';
import { ImageResolver } from './image.resolver.ts';

const EVERY_REQUEST =
  'Outside open mode every request needs an API key (Authorization: Bearer <key>), else ' +
  `UNAUTHENTICATED. An operation with more than ${MAX_TOP_FIELDS} fields at its top (each reads the database), ` +
  `a document deeper than ${MAX_DEPTH} levels, selecting more than ${MAX_FIELDS} fields or that may ` +
  `return more than ${MAX_NODES} objects (each list counted full: a page at its first, images at ${LIST_BOUND}) is ` +
  "QUERY_TOO_COMPLEX. You see only your key's generations; any other id is NOT_FOUND.";

/** A time given finer than a millisecond, rounded up to the next one (a JS Date holds whole milliseconds). */
const roundedUp = (raw: unknown, d: Date): Date =>
  typeof raw === 'string' && /\.\d{3}\d*[1-9]/.test(raw) ? new Date(d.getTime() + 1) : d;

/**
 * graphql-scalars' DateTime, but an input finer than a millisecond is rounded up, where it would be cut down: times
 * are stored in whole milliseconds, so every bound keeps its meaning (createdBefore "...01.371999Z" takes a
 * generation made at ...01.371Z; usage's from and to the same).
 */
const DateTime = new GraphQLScalarType({
  ...DateTimeResolver.toConfig(),
  parseValue: (v) => roundedUp(v, DateTimeResolver.parseValue(v)),
  parseLiteral: (ast, vars) =>
    roundedUp(ast.kind === Kind.STRING ? ast.value : null, DateTimeResolver.parseLiteral(ast, vars)),
});

/** type-graphql builds Query, Mutation and Subscription itself and takes no description for them. */
const ROOTS = {
  Query: `Reads: your generations and images, and the models served. ${EVERY_REQUEST}`,
  Mutation: 'Requests for images (answered at once with a QUEUED generation) and cancels. ' + EVERY_REQUEST,
  Subscription:
    'Live generations over graphql-ws on the same /graphql URL; the key goes in the connection_init ' +
    'payload as { "authorization": "Bearer <key>" }. A socket runs a limited number of operations at once; more are ' +
    'RATE_LIMITED.',
};

export async function buildGanvasSchema(pubsub: GenerationPubSub): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: [GenerationResolver, ImageResolver],
    pubSub: pubsub,
    scalarsMap: [{ type: Date, scalar: DateTime }],
    validate: false,
    emitSchemaFile: false,
  });
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()])
    if (root) root.description = ROOTS[root.name as keyof typeof ROOTS];
  return schema;
}
