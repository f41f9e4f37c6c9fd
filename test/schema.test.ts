import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { SCHEMA_FILE, TYPES_FILE, printGanvasSchema } from '../src/schema/emit.ts';

test('schema.graphql and examples/schema-types.ts are what the code serves (run `npm run schema` after changing it)', async () => {
  const { sdl, types } = await printGanvasSchema();
  assert.equal(await readFile(SCHEMA_FILE, 'utf8'), sdl);
  assert.equal(await readFile(TYPES_FILE, 'utf8'), types);
});
