/** `npm run schema`: writes the public GraphQL schema to schema.graphql (committed; a test keeps it current). */
import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { printSchema } from 'graphql';
import { runMain } from '../cli/args.ts';
import { createGenerationPubSub } from '../events/bridge.ts';
import { buildGanvasSchema } from './build.ts';

export const SCHEMA_FILE = join(__dirname, '..', '..', 'schema.graphql');

export async function printGanvasSchema(): Promise<string> {
  return `${printSchema(await buildGanvasSchema(createGenerationPubSub()))}\n`;
}

if (require.main === module) {
  runMain(async () => {
    await writeFile(SCHEMA_FILE, await printGanvasSchema());
    console.log(`wrote ${SCHEMA_FILE}`);
  });
}
