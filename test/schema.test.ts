import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { SCHEMA_FILE, printGanvasSchema } from '../src/schema/emit.ts';

test('schema.graphql is the schema the code serves (run `npm run schema` after changing it)', async () => {
  assert.equal(await readFile(SCHEMA_FILE, 'utf8'), await printGanvasSchema());
});
