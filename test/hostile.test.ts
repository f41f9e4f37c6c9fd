/**
 * Hundreds of malformed or hostile requests (bad JSON, wrong types, huge strings, deep and wide queries,
 * bad ids, injection attempts, broken uploads and image URLs, wrong keys, wrong methods) against a service that needs
 * API keys: no crash, no 500, every GraphQL error has a code, nothing stored.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createApiKey } from '../src/auth/keys.ts';
import { STYLE_DECODES_PER_KEY } from '../src/generations/service.ts';
import { encodePng } from '../src/images/png.ts';
import { type Running, startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { tinyModelDir } from './support/model.ts';
import { codeOf, collect, gql, wsClient } from './support/graphql.ts';

let running: Running;
let origin = '';
let key = '';

before(async () => {
  running = await startServices(
    testConfig(await tinyModelDir()),
    { api: true, worker: false, migrate: true, auth: 'keys' },
    silentLogger(),
  );
  origin = `http://127.0.0.1:${running.api!.port}`;
  key = (await createApiKey(running.db.prisma, 'hostile')).key;
});

after(async () => {
  await running?.stop();
});

interface Attack {
  name: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}

function attacks(): Attack[] {
  const out: Attack[] = [];
  const auth = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  const gqlBody = (query: string, variables: unknown = {}) => JSON.stringify({ query, variables });
  const mutation = 'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }';
  const valid = gqlBody(mutation, { i: { caption: 'a flower' } });
  // bad JSON: every truncation of a valid body, and junk
  for (let cut = 1; cut < valid.length; cut += Math.ceil(valid.length / 25))
    out.push({ name: `truncated at ${cut}`, headers: auth, body: valid.slice(0, cut) });
  for (const junk of [
    '',
    'null',
    '[]',
    '[1,2]',
    '"query"',
    '{}',
    '{"query": null}',
    '{"query": {}}',
    '{"query": []}',
    '\u0000\u0001',
    '{"query": "{ models { name } }", "variables": "x"}',
  ])
    out.push({ name: `junk ${JSON.stringify(junk)}`, headers: auth, body: junk });
  // wrong types for every input field
  const wrong = [null, 1.5, -1, 2 ** 40, 'x', true, [], {}, ['a'], { $gt: '' }];
  const validFor: Record<string, unknown[]> = { caption: ['x'], count: [null], seed: [null, -1], model: [null] };
  for (const field of ['caption', 'count', 'seed', 'model'])
    for (const v of wrong.filter((w) => !validFor[field].includes(w)))
      out.push({
        name: `${field} = ${JSON.stringify(v)}`,
        headers: auth,
        body: gqlBody(mutation, { i: { caption: 'a flower', [field]: v } }),
      });
  for (const v of wrong)
    out.push({
      name: `captions = ${JSON.stringify(v)}`,
      headers: auth,
      body: gqlBody('mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
        i: { imageId: '00000000-0000-4000-8000-000000000000', captions: v },
      }),
    });
  // limits and huge strings
  for (const n of [501, 10_000, 200_000, 900_000])
    out.push({ name: `caption of ${n}`, headers: auth, body: gqlBody(mutation, { i: { caption: 'x'.repeat(n) } }) });
  for (const c of [0, -5, 17, 1000])
    out.push({ name: `count ${c}`, headers: auth, body: gqlBody(mutation, { i: { caption: 'a flower', count: c } }) });
  for (const s of [1, 0, 17, 99])
    out.push({
      name: `steps ${s}`,
      headers: auth,
      body: gqlBody('mutation { interpolateCaptions(input: { from: "a", to: "b", steps: ' + s + ' }) { id } }'),
    });
  // bad ids and injection attempts, everywhere an id goes
  const ids = [
    "' OR 1=1 --",
    '"; DROP TABLE "Generation"; --',
    '../../etc/passwd',
    'x'.repeat(10_000),
    '0',
    '-1',
    '\u202e',
    '🌸',
    '00000000-0000-0000-0000-00000000000g',
    '{}',
  ];
  for (const id of ids) {
    out.push({
      name: `generation(${id.slice(0, 20)})`,
      headers: auth,
      body: gqlBody('query($id: ID!) { generation(id: $id) { id } }', { id }),
    });
    out.push({
      name: `image(${id.slice(0, 20)})`,
      headers: auth,
      body: gqlBody('query($id: ID!) { image(id: $id) { id } }', { id }),
    });
    out.push({
      name: `cancel(${id.slice(0, 20)})`,
      headers: auth,
      body: gqlBody('mutation($id: ID!) { cancelGeneration(id: $id) { id } }', { id }),
    });
    out.push({
      name: `transferStyle(${id.slice(0, 20)})`,
      headers: auth,
      body: gqlBody('mutation($id: ID!) { transferStyle(input: { imageId: $id, captions: ["a"] }) { id } }', { id }),
    });
    out.push({
      name: `after(${id.slice(0, 20)})`,
      headers: auth,
      body: gqlBody('query($a: String) { generations(after: $a) { edges { cursor } } }', { a: id }),
    });
    out.push({
      name: `image url ${id.slice(0, 20)}`,
      method: 'GET',
      path: `/images/${encodeURIComponent(id)}.png?t=${encodeURIComponent(id)}`,
    });
    out.push({
      name: `animation url ${id.slice(0, 20)}`,
      method: 'GET',
      path: `/generations/${encodeURIComponent(id)}/animation.png?t=x`,
    });
  }
  // dates a JavaScript Date holds and Postgres does not (before 4713 BC), in a cursor and in date arguments
  const uuid = '00000000-0000-4000-8000-000000000000';
  for (const iso of ['-005000-01-01T00:00:00.000Z', '+275000-01-01T00:00:00.000Z', '0000-01-01T00:00:00.000Z']) {
    out.push({
      name: `cursor at ${iso}`,
      headers: auth,
      body: gqlBody('query($a: String) { generations(after: $a) { edges { cursor } } }', {
        a: Buffer.from(`${iso}|${uuid}`).toString('base64url'),
      }),
    });
    for (const [name, query] of [
      ['createdBefore', 'query($d: DateTime) { generations(createdBefore: $d) { edges { cursor } } }'],
      ['usage', 'query($d: DateTime) { usage(from: $d) { day } }'],
      ['delete', 'mutation($d: DateTime) { deleteGenerations(filter: { createdBefore: $d }) }'],
    ])
      out.push({ name: `${name} ${iso}`, headers: auth, body: gqlBody(query, { d: iso }) });
  }
  // broken style images: not images, truncated, lying headers, too big
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100802000000', 'hex');
  const lying = Buffer.from(png);
  lying.writeUInt32BE(60_000, 16);
  const jpegHead = Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex');
  for (const image of [
    '',
    '!!!',
    'aGVsbG8=',
    png.toString('base64'),
    lying.toString('base64'),
    jpegHead.toString('base64'),
    `data:image/gif;base64,R0lGODlh`,
    'A'.repeat(750_000),
    Buffer.alloc(5000, 0xff).toString('base64'),
    `data:image/png;base64,${png.toString('base64')}xx`,
  ])
    out.push({
      name: `upload ${image.slice(0, 16)}`,
      headers: auth,
      body: gqlBody('mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }', {
        i: { image, captions: ['a flower'] },
      }),
    });
  // deep and wide queries
  for (const depth of [9, 15, 40]) {
    let q = 'id';
    for (let i = 0; i < depth; i++) q = i % 2 ? `generation { ${q} }` : `images { ${q} }`;
    out.push({ name: `depth ${depth}`, headers: auth, body: gqlBody(`{ generations { edges { node { ${q} } } } }`) });
  }
  for (const n of [300, 2000])
    out.push({
      name: `${n} aliases`,
      headers: auth,
      body: gqlBody(`{ ${Array.from({ length: n }, (_, i) => `a${i}: models { name }`).join(' ')} }`),
    });
  out.push({
    name: 'fragment cycle',
    headers: auth,
    body: gqlBody('query { models { ...A } } fragment A on ModelInfo { ...B } fragment B on ModelInfo { ...A }'),
  });
  out.push({
    name: 'subscription over HTTP',
    headers: auth,
    body: gqlBody('subscription { generationUpdated(id: "00000000-0000-4000-8000-000000000000") { status } }'),
  });
  out.push({ name: 'unknown field', headers: auth, body: gqlBody('{ __schema { types { name } } nope }') });
  out.push({ name: 'syntax error', headers: auth, body: gqlBody('{ models { name ') });
  // wrong keys
  const keys = [
    'Token abc',
    'Bearer null',
    undefined,
    '',
    'Bearer',
    'Bearer ',
    'Basic dXNlcjpwYXNz',
    `Bearer ${key}x`,
    `Bearer ${key.slice(0, -1)}`,
    'Bearer gnv_',
    `Bearer ${'a'.repeat(5000)}`,
    `bearer  ${key} extra`,
  ];
  for (const k of keys)
    for (const q of ['{ models { name } }', mutation])
      out.push({
        name: `key ${String(k).slice(0, 20)}`,
        headers: { 'content-type': 'application/json', ...(k !== undefined ? { authorization: k } : {}) },
        body: gqlBody(q, { i: { caption: 'a flower' } }),
      });
  // methods and content types
  out.push({
    name: 'GET mutation',
    method: 'GET',
    path: `/graphql?query=${encodeURIComponent('mutation { generateImages(input: { caption: "x" }) { id } }')}`,
    headers: { authorization: `Bearer ${key}` },
  });
  for (const type of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
  ])
    out.push({
      name: `content-type ${type}`,
      headers: { 'content-type': type, authorization: `Bearer ${key}` },
      body: valid,
    });
  for (const method of ['PUT', 'DELETE', 'PATCH'])
    out.push({ name: `${method} /graphql`, method, headers: auth, body: valid });
  // the operations paths as routing would also match them (case, a trailing slash): not the endpoints
  for (const path of ['/metrics/', '/METRICS', '/Readyz/', '/healthz/'])
    out.push({ name: `GET ${path}`, method: 'GET', path });
  return out;
}

test('at least 200 hostile requests: no crash, no 500, coded errors, nothing stored', async () => {
  const list = attacks();
  assert.ok(list.length >= 200, `${list.length} attacks`);
  const before = await running.db.query<{ n: string }>('SELECT count(*)::text AS n FROM "Generation"');
  const statuses = new Map<number, number>();
  for (const a of list) {
    const res = await fetch(origin + (a.path ?? '/graphql'), {
      method: a.method ?? 'POST',
      headers: a.headers,
      body: a.method === 'GET' ? undefined : a.body,
    });
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    assert.ok(res.status < 500, `${a.name}: ${res.status}`);
    const text = await res.text();
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      const body = JSON.parse(text) as { errors?: { extensions?: { code?: string; stacktrace?: unknown } }[] };
      for (const e of body.errors ?? []) {
        assert.ok(e.extensions?.code, `${a.name}: error without a code: ${text.slice(0, 200)}`);
        // an internal error is a bug met on the way, not an answer to bad input
        assert.notEqual(e.extensions.code, 'INTERNAL_SERVER_ERROR', `${a.name}: ${text.slice(0, 200)}`);
        assert.equal(e.extensions.stacktrace, undefined);
      }
    }
  }
  console.log(`${list.length} hostile requests; statuses: ${[...statuses].map(([s, n]) => `${s} x${n}`).join(', ')}`);
  const after = await running.db.query<{ n: string }>('SELECT count(*)::text AS n FROM "Generation"');
  assert.deepEqual(after, before);
  assert.equal((await fetch(`${origin}/healthz`)).status, 200);
  assert.doesNotMatch(await (await fetch(`${origin}/metrics/`)).text(), /ganvas_/, 'only /metrics itself serves them');
});

test("an upload up to 1.5x over its limit gets the upload check's BAD_USER_INPUT, not PAYLOAD_TOO_LARGE; a body beyond that is told what an upload may be", async () => {
  const res = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({
      query: 'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }',
      variables: { i: { image: Buffer.alloc(1_050_000, 7).toString('base64'), captions: ['a flower'] } },
    }),
  });
  const body = (await res.json()) as { errors: { message: string; extensions: { code: string } }[] };
  assert.equal(body.errors[0].extensions.code, 'BAD_USER_INPUT');
  assert.match(body.errors[0].message, /larger than 700000 bytes/);
  // more than the body's limit: PAYLOAD_TOO_LARGE, which says what a style image may be
  const huge = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: '{ __typename }', variables: { i: 'x'.repeat(3_000_000) } }),
  });
  assert.equal(huge.status, 413);
  const refused = (await huge.json()) as { errors: { message: string; extensions: { code: string } }[] };
  assert.equal(refused.errors[0].extensions.code, 'PAYLOAD_TOO_LARGE');
  assert.match(refused.errors[0].message, /a style image may be 700000 at most: scale it down/);
});

test("a key's style uploads decoded at once are bounded: more at the same time are RATE_LIMITED, later ones admitted", async () => {
  // 2048 x 2048: small as a file (one colour), ~100 ms to decode
  const side = 2048;
  const png = encodePng(new Uint8Array(side * side * 3).fill(90), side, side).toString('base64');
  const upload = () =>
    fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({
        query: 'mutation($i: TransferStyleInput!) { transferStyle(input: $i) { id } }',
        variables: { i: { image: png, captions: ['a flower'] } },
      }),
    }).then((r) => r.json() as Promise<{ data?: unknown; errors?: { message: string; extensions: any }[] }>);
  const answers = await Promise.all(Array.from({ length: 5 }, upload));
  const refused = answers.filter((a) => a.errors);
  assert.ok(refused.length >= 1 && refused.length <= 5 - STYLE_DECODES_PER_KEY, JSON.stringify(answers));
  for (const a of refused) {
    assert.equal(a.errors![0].extensions.code, 'RATE_LIMITED');
    assert.equal(a.errors![0].extensions.retryAfterSeconds, 1);
    assert.match(a.errors![0].message, /being read now/);
  }
  assert.ok((await upload()).data, 'one at a time is admitted');
});

/** A document nested deeper than the limit allows (QUERY_TOO_COMPLEX). */
const TOO_COMPLEX = `{ generations { edges { node { ${Array.from({ length: 9 }).reduce<string>(
  (inner, _, i) => (i % 2 ? `generation { ${inner} }` : `images { ${inner} }`),
  'id',
)} } } } }`;

test('a document refused before it runs gets the same code over HTTP and over WebSocket', async () => {
  const cases = [
    ['QUERY_TOO_COMPLEX', TOO_COMPLEX], // Apollo's wrapper said VALIDATION_FAILED
    ['GRAPHQL_VALIDATION_FAILED', '{ modles { name } }'], // graphql-ws's said BAD_USER_INPUT
    ['GRAPHQL_VALIDATION_FAILED', '{ generations(first: 99999999999) { edges { cursor } } }'],
    ['GRAPHQL_PARSE_FAILED', '{ models { name }'],
    ['GRAPHQL_PARSE_FAILED', `${'{a'.repeat(5000)}${'}'.repeat(5000)}`], // deeper than the parser's stack
    ['OPERATION_RESOLUTION_FAILURE', 'query A { models { name } } query B { models { name } }'], // which one?
  ];
  const ws = wsClient(`${origin}/graphql`, key);
  try {
    for (const [code, query] of cases) {
      assert.equal(codeOf(await gql(`${origin}/graphql`, query, {}, key)), code, `HTTP: ${query}`);
      const events = await collect(ws, query, {});
      assert.equal(codeOf(events[events.length - 1]), code, `WebSocket: ${query}`);
    }
  } finally {
    await ws.dispose();
  }
});

test('automatic persisted queries: a hash alone until the query is sent once, then the hash alone; a wrong hash refused', async () => {
  const query = '{ models { name } }';
  const sha256Hash = createHash('sha256').update(query).digest('hex');
  const post = (body: object) =>
    fetch(`${origin}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { data?: unknown; errors?: { extensions: any }[] },
    }));
  const persisted = { persistedQuery: { version: 1, sha256Hash } };
  const first = await post({ extensions: persisted });
  assert.equal(first.body.errors?.[0].extensions.code, 'PERSISTED_QUERY_NOT_FOUND', JSON.stringify(first));
  assert.equal(first.status, 200);
  assert.deepEqual((await post({ query, extensions: persisted })).body.errors, undefined);
  const again = await post({ extensions: persisted });
  assert.deepEqual(again.body, (await post({ query })).body);
  assert.ok(again.body.data);
  // a document over the limits is refused with its hash too, and not kept
  const complex = TOO_COMPLEX;
  const complexHash = {
    persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(complex).digest('hex') },
  };
  assert.equal(
    (await post({ query: complex, extensions: complexHash })).body.errors?.[0].extensions.code,
    'QUERY_TOO_COMPLEX',
  );
  assert.equal((await post({ extensions: complexHash })).body.errors?.[0].extensions.code, 'PERSISTED_QUERY_NOT_FOUND');
  const wrong = await post({ query: '{ models { name description } }', extensions: persisted });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.errors?.[0].extensions.code, 'BAD_USER_INPUT', JSON.stringify(wrong.body));
  // by GET too (Apollo Client's useGETForHashedQueries; urql sends its queries so): a hash alone, a query, with the
  // key and no content type (no cross-site request: a browser preflights Authorization, and CORS refuses it)
  const get = (params: Record<string, unknown>) =>
    fetch(`${origin}/graphql?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, JSON.stringify(v)]))}`, {
      headers: { authorization: `Bearer ${key}` },
    }).then(async (r) => (await r.json()) as { data?: unknown; errors?: { extensions: any }[] });
  assert.deepEqual(await get({ extensions: persisted }), again.body);
  const other = {
    persistedQuery: { version: 1, sha256Hash: createHash('sha256').update('{ quota { perMinute } }').digest('hex') },
  };
  assert.equal((await get({ extensions: other })).errors?.[0].extensions.code, 'PERSISTED_QUERY_NOT_FOUND');
  const byGet = await fetch(`${origin}/graphql?query=${encodeURIComponent(query)}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  assert.equal(byGet.status, 200);
  assert.deepEqual(await byGet.json(), again.body);
  // without a key, the request of a form or an image on any page: refused (Apollo's CSRF rule), nothing run
  const bare = await fetch(`${origin}/graphql?query=${encodeURIComponent(query)}`);
  assert.equal(bare.status, 400);
  assert.equal(((await bare.json()) as { errors: { extensions: any }[] }).errors[0].extensions.code, 'BAD_REQUEST');
});
