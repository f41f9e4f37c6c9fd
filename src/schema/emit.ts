/**
 * `npm run schema`: writes the public GraphQL schema to schema.graphql and its TypeScript types to
 * examples/schema-types.ts (both committed; a test keeps them current).
 */
import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { printSchema } from 'graphql';
import { runMain } from '../cli/args.ts';
import { createGenerationPubSub } from '../events/bridge.ts';
import { buildGanvasSchema } from './build.ts';
import { schemaTypes } from './typegen.ts';

export const SCHEMA_FILE = join(__dirname, '..', '..', 'schema.graphql');
export const TYPES_FILE = join(__dirname, '..', '..', 'examples', 'schema-types.ts');

export async function printGanvasSchema(): Promise<{ sdl: string; types: string }> {
  const schema = await buildGanvasSchema(createGenerationPubSub());
  return { sdl: `${printSchema(schema)}\n`, types: schemaTypes(schema) };
}

if (require.main === module) {
  runMain(async () => {
    const { sdl, types } = await printGanvasSchema();
    await writeFile(SCHEMA_FILE, sdl);
    await writeFile(TYPES_FILE, types);
    console.log(`wrote ${SCHEMA_FILE} and ${TYPES_FILE}`);
  });
}
