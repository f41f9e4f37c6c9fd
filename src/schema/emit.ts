/** The public GraphQL schema as SDL and as TypeScript types, and where `npm run schema` (bin/schema.ts) writes them. */
import 'reflect-metadata';
import { join } from 'node:path';
import { printSchema } from 'graphql';
import { createGenerationPubSub } from '../events/bridge.ts';
import { buildGanvasSchema } from './build.ts';
import { schemaTypes } from './typegen.ts';

export const SCHEMA_FILE = join(__dirname, '..', '..', 'schema.graphql');
export const TYPES_FILE = join(__dirname, '..', '..', 'examples', 'schema-types.ts');

export async function printGanvasSchema(): Promise<{ sdl: string; types: string }> {
  const schema = await buildGanvasSchema(createGenerationPubSub());
  return { sdl: `${printSchema(schema)}\n`, types: schemaTypes(schema) };
}
