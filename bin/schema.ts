/**
 * `npm run schema`: writes the public GraphQL schema to schema.graphql and its TypeScript types to
 * examples/schema-types.ts (both committed; a test keeps them current).
 */
import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { runMain } from '../src/cli/args.ts';
import { SCHEMA_FILE, TYPES_FILE, printGanvasSchema } from '../src/schema/emit.ts';

runMain(async () => {
  const { sdl, types } = await printGanvasSchema();
  await writeFile(SCHEMA_FILE, sdl);
  await writeFile(TYPES_FILE, types);
  console.log(`wrote ${SCHEMA_FILE} and ${TYPES_FILE}`);
});
