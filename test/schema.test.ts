import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { PerGeneration } from '../src/schema/context.ts';
import { SCHEMA_FILE, TYPES_FILE, printGanvasSchema } from '../src/schema/emit.ts';

test('schema.graphql and examples/schema-types.ts are what the code serves (run `npm run schema` after changing it)', async () => {
  const { sdl, types } = await printGanvasSchema();
  assert.equal(await readFile(SCHEMA_FILE, 'utf8'), sdl);
  assert.equal(await readFile(TYPES_FILE, 'utf8'), types);
});

test('a Generation object reads its images once for all its fields; generations in one tick share one query', async () => {
  const calls: string[][] = [];
  const images = new PerGeneration(async (ids) => (calls.push([...ids]), ids.map(() => [])));
  const a = { id: 'a' };
  const b = { id: 'b' };
  await Promise.all([images.of(a), images.of(a), images.of(b)]); // images + animationUrl of a, images of b
  assert.deepEqual(calls, [['a', 'b']]);
  await images.of({ id: 'a' }); // the next subscription event: a fresh object is read again
  assert.deepEqual(calls, [['a', 'b'], ['a']]);
});
