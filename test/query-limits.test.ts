/** The depth and size limits on GraphQL documents (src/schema/query-limits.ts), on a small schema. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, getIntrospectionQuery, parse, validate } from 'graphql';
import { MAX_DEPTH, MAX_FIELDS, MAX_TOP_FIELDS, queryLimits } from '../src/schema/query-limits.ts';

const schema = buildSchema(`
  type Node { id: ID! name: String child: Node }
  type Query { node: Node }
`);
const codes = (doc: string) => validate(schema, parse(doc), [queryLimits]).map((e) => e.extensions.code);

test('depth counts nested selections through fragments; the limit is inclusive', () => {
  const nested = (levels: number) => {
    let q = 'id';
    for (let i = 1; i < levels; i++) q = `child { ${q} }`;
    return `{ node { ${q} } }`; // node is level 1 ... id at level `levels` + 1
  };
  assert.deepEqual(codes(nested(MAX_DEPTH - 1)), []);
  assert.deepEqual(codes(nested(MAX_DEPTH)), ['QUERY_TOO_COMPLEX']);
  assert.deepEqual(
    codes(
      `{ node { ...F } } fragment F on Node { child { child { child { child { child { child { child { id } } } } } } } }`,
    ),
    ['QUERY_TOO_COMPLEX'],
  );
});

test('the introspection query tools send passes on the real schema (GraphiQL reads the schema so); its cycles do not', () => {
  const api = buildSchema(readFileSync(join(__dirname, '..', 'schema.graphql'), 'utf8'));
  const apiCodes = (doc: string) => validate(api, parse(doc), [queryLimits]).map((e) => e.extensions.code);
  for (const options of [
    {},
    { inputValueDeprecation: true, schemaDescription: true }, // GraphiQL's
    { descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, inputValueDeprecation: true, oneOf: true },
  ])
    assert.deepEqual(apiCodes(getIntrospectionQuery(options)), []);
  // a type's ofType, written out by hand too
  assert.deepEqual(
    apiCodes('{ __type(name: "Generation") { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } }'),
    [],
  );
  // fields -> type -> fields ... is a cycle: still counted, in a fragment too
  assert.deepEqual(
    apiCodes(
      '{ __schema { types { ...T } } } fragment T on __Type { fields { type { fields { type { fields { type { name } } } } } } }',
    ),
    ['QUERY_TOO_COMPLEX'],
  );
  assert.deepEqual(
    apiCodes('{ __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }'),
    ['QUERY_TOO_COMPLEX'],
  );
});

test('an operation has at most MAX_TOP_FIELDS fields at its top (each reads the database), fragments included', () => {
  const top = (n: number) => Array.from({ length: n }, (_, i) => `a${i}: node { id }`).join(' ');
  assert.deepEqual(codes(`{ ${top(MAX_TOP_FIELDS)} __typename }`), []);
  assert.deepEqual(codes(`{ ${top(MAX_TOP_FIELDS + 1)} }`), ['QUERY_TOO_COMPLEX']);
  assert.deepEqual(
    codes(`{ ...Q ... on Query { extra: node { id } } } fragment Q on Query { ${top(MAX_TOP_FIELDS)} }`),
    ['QUERY_TOO_COMPLEX'],
  );
  // one fragment spread twice at the top is merged: its fields count once
  assert.deepEqual(codes(`{ ...Q ...Q } fragment Q on Query { ${top(MAX_TOP_FIELDS)} }`), []);
});

test('a fragment spread many times counts its fields every time', () => {
  const fields = 'id name child { id }';
  const spreads = Math.ceil(MAX_FIELDS / 4) + 1;
  const doc = `{ node { ${Array.from({ length: spreads }, (_, i) => `a${i}: child { ...F }`).join(' ')} } } fragment F on Node { ${fields} }`;
  assert.deepEqual(codes(doc), ['QUERY_TOO_COMPLEX']);
  assert.deepEqual(codes(`{ a: node { ...F } b: node { ...F } } fragment F on Node { ${fields} }`), []);
});

test(
  'fragments that each spread the next twice are measured once each (was exponential: 2^40 expansions)',
  { timeout: 10_000 },
  () => {
    const n = 40;
    const frags = Array.from(
      { length: n },
      (_, i) =>
        `fragment F${i} on Node { ${i + 1 < n ? `a: child { ...F${i + 1} } b: child { ...F${i + 1} }` : 'id'} }`,
    );
    // 40 levels deep and 2^40 fields: refused, and quickly (the test's timeout guards against the old walker)
    assert.deepEqual(codes(`{ node { ...F0 } } ${frags.join(' ')}`), ['QUERY_TOO_COMPLEX']);
    const wide = Array.from(
      { length: n },
      (_, i) => `fragment W${i} on Node { ${i + 1 < n ? `...W${i + 1} ... on Node { ...W${i + 1} }` : 'id'} }`,
    );
    assert.deepEqual(codes(`{ node { ...W0 } } ${wide.join(' ')}`), ['QUERY_TOO_COMPLEX']); // shallow, but 2^39 fields as written
  },
);

test('lists multiply what is below them: a page counts at its first, other lists at their bound', () => {
  const listed = buildSchema(`
    type Item { id: ID! children: [Item!]! }
    type Edge { node: Item! }
    type Page { edges: [Edge!]! }
    type Query { page(first: Int = 20): Page }
  `);
  const refused = (doc: string) =>
    validate(listed, parse(doc), [queryLimits])
      .map((e) => e.extensions.code)
      .includes('QUERY_TOO_COMPLEX');
  // 100 x (page, edge, item, 16 children) = 1,900 objects; nested once more, 100 x (3 + 16 x 17) = 27,500
  assert.equal(refused('{ page(first: 100) { edges { node { children { id } } } } }'), false);
  assert.equal(refused('{ page(first: 100) { edges { node { children { children { id } } } } } }'), true);
  assert.equal(refused('{ page(first: 20) { edges { node { children { children { id } } } } } }'), false); // 5,500
  assert.equal(refused('{ page { edges { node { children { children { id } } } } } }'), false); // first's default
  assert.equal(refused('query($n: Int) { page(first: $n) { edges { node { children { children { id } } } } } }'), true);
  // through fragments and aliases the same: 4 x 5,500
  const many = Array.from({ length: 4 }, (_, i) => `p${i}: page(first: 20) { ...E }`).join(' ');
  assert.equal(refused(`{ ${many} } fragment E on Page { edges { node { children { children { id } } } } }`), true);
});
