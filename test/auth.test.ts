/**
 * API keys and quotas (keys mode, on Postgres): no key or a bad one is UNAUTHENTICATED over HTTP and
 * WebSocket; one key's work is NOT_FOUND to another everywhere (queries, lists, cancel, subscriptions,
 * style transfer); image URLs need their token; the per-key rate limit answers RATE_LIMITED with a hint; a
 * key's owner is kept by the API until the key is revoked.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from 'graphql-ws';
import { KeyOwners } from '../src/auth/key-owners.ts';
import { decodePng } from '../src/images/png.ts';
import { createApiKey, revokeApiKey, setKeyLimits } from '../src/auth/keys.ts';
import { type Running, startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { codeOf, collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';

let running: Running;
let drop: () => Promise<void>;
let url = '';
let origin = '';
let keyA = '';
let keyB = '';
const clients: Client[] = [];

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  running = await startServices(
    testConfig(await tinyModelDir(), {
      databaseUrl: pgdb.url,
      quotas: { perMinute: 8, queued: 1000, imagesPerDay: null },
    }),
    { api: true, worker: true, migrate: true, auth: 'keys' },
    silentLogger(),
  );
  url = running.api!.url;
  origin = new URL(url).origin;
  keyA = (await createApiKey(running.db.prisma, 'team a')).key;
  keyB = (await createApiKey(running.db.prisma, 'team b')).key;
});

after(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await running?.stop();
  await drop?.();
});

/** Runs a mutation that creates a generation and waits for it to finish. */
const finishedWith = async (key: string, mutation: string) => {
  const id = (Object.values((await gql(url, mutation, {}, key)).data!)[0] as { id: string }).id;
  return finished(id, key);
};

const finished = async (id: string, key: string) => {
  const ws = wsClient(url, key);
  clients.push(ws);
  return (
    await collect(
      ws,
      'subscription($id: ID!) { generationUpdated(id: $id) { id status images { id url } animationUrl } }',
      { id },
    )
  ).at(-1)!;
};

test('no key, a malformed key or an unknown key is UNAUTHENTICATED; keys are stored hashed', async () => {
  for (const key of [undefined, 'nope', 'gnv_not-a-real-key']) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ query: '{ models { name } }' }),
    });
    assert.equal(res.status, 401);
    assert.equal(
      ((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0].extensions.code,
      'UNAUTHENTICATED',
    );
  }
  // a 401 names the scheme (RFC 6750); a key sent without "Bearer " is told how to send it, not to send one
  const bare = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: keyA },
    body: JSON.stringify({ query: '{ models { name } }' }),
  });
  assert.equal(bare.status, 401);
  assert.equal(bare.headers.get('www-authenticate'), 'Bearer realm="ganvas"');
  assert.match(((await bare.json()) as { errors: { message: string }[] }).errors[0].message, /the word Bearer/);
  const ws = wsClient(url, 'gnv_wrong');
  clients.push(ws);
  await assert.rejects(collect(ws, '{ models { name } }', {}, 5000));
  const rows = await running.db.query<{ keyHash: string }>('SELECT "keyHash" FROM "ApiKey"');
  assert.ok(rows.every((r) => /^[0-9a-f]{64}$/.test(r.keyHash) && r.keyHash !== keyA && r.keyHash !== keyB));
});

test("one key's work is NOT_FOUND to another, and image URLs need their token", async () => {
  const g = (
    await gql(
      url,
      'mutation { interpolateCaptions(input: { from: "a red flower", to: "a blue flower", steps: 2 }) { id } }',
      {},
      keyA,
    )
  ).data!.interpolateCaptions;
  const done = (await finished(g.id, keyA)).data!.generationUpdated;
  assert.equal(done.status, 'SUCCEEDED');
  const image = done.images[0];
  assert.equal(codeOf(await gql(url, `{ generation(id: "${g.id}") { id } }`, {}, keyB)), 'NOT_FOUND');
  assert.equal(codeOf(await gql(url, `{ image(id: "${image.id}") { id } }`, {}, keyB)), 'NOT_FOUND');
  assert.equal(codeOf(await gql(url, `mutation { cancelGeneration(id: "${g.id}") { id } }`, {}, keyB)), 'NOT_FOUND');
  assert.equal(
    codeOf(
      await gql(url, `mutation { transferStyle(input: { imageId: "${image.id}", captions: ["a"] }) { id } }`, {}, keyB),
    ),
    'NOT_FOUND',
  );
  assert.equal(codeOf(await finished(g.id, keyB)), 'NOT_FOUND');
  const listB = (await gql(url, '{ generations { edges { node { id } } } }', {}, keyB)).data!.generations.edges;
  assert.equal(listB.length, 0);
  const listA = (await gql(url, '{ generations { edges { node { id } } } }', {}, keyA)).data!.generations.edges;
  assert.deepEqual(
    listA.map((e: { node: { id: string } }) => e.node.id),
    [g.id],
  );
  assert.equal((await fetch(origin + image.url)).status, 200);
  assert.equal((await fetch(`${origin}/images/${image.id}.png`)).status, 404);
  assert.equal((await fetch(`${origin}/images/${image.id}.png?t=${'0'.repeat(32)}`)).status, 404);
  assert.equal((await fetch(origin + done.animationUrl)).status, 200);
  assert.equal((await fetch(`${origin}/generations/${g.id}/animation.png`)).status, 404);
});

test("an interpolation's animation is made once: a finished one is kept (and cacheable), a deleted one is gone", async () => {
  const g = (
    await gql(
      url,
      'mutation { interpolateCaptions(input: { from: "a red flower", to: "a blue flower", steps: 3 }) { id } }',
      {},
      keyA,
    )
  ).data!.interpolateCaptions;
  const done = (await finished(g.id, keyA)).data!.generationUpdated;
  const first = await fetch(origin + done.animationUrl);
  assert.equal(first.status, 200);
  assert.equal(first.headers.get('cache-control'), 'private, max-age=86400, immutable');
  const bytes = Buffer.from(await first.arrayBuffer());
  // every frame made the first one's: an animation made again would change (its frames' pixels differ), the one
  // kept does not
  const pngs = await running.db.query<{ png: Uint8Array }>(
    'SELECT png FROM "Image" WHERE "generationId" = $1::uuid ORDER BY index',
    [g.id],
  );
  assert.notDeepEqual(decodePng(Buffer.from(pngs[0].png)).rgb, decodePng(Buffer.from(pngs[2].png)).rgb);
  await running.db.query(
    `UPDATE "Image" SET png = (SELECT png FROM "Image" WHERE "generationId" = $1::uuid ORDER BY index LIMIT 1)
      WHERE "generationId" = $1::uuid`,
    [g.id],
  );
  assert.deepEqual(Buffer.from(await (await fetch(origin + done.animationUrl)).arrayBuffer()), bytes);
  await gql(url, `mutation { deleteGeneration(id: "${g.id}") }`, {}, keyA);
  assert.equal((await fetch(origin + done.animationUrl)).status, 404);
});

test('a retry with its idempotency key is answered at the rate limit; another key of yours is RATE_LIMITED', async () => {
  const { id, key } = await createApiKey(running.db.prisma, 'retrying');
  await setKeyLimits(running.db.prisma, id, { rateLimitPerMinute: 1 });
  const generate = (idempotencyKey: string, seed = 5) =>
    gql(
      url,
      'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
      { i: { caption: 'a flower', count: 1, seed, idempotencyKey } },
      key,
    );
  const first = (await generate('order-1')).data!.generateImages.id;
  assert.equal((await generate('order-1')).data!.generateImages.id, first);
  assert.equal(codeOf(await generate('order-2')), 'RATE_LIMITED');
  // the same key with another seed, or another webhook, given is another request
  const other = await generate('order-1', 6);
  assert.equal(codeOf(other), 'BAD_USER_INPUT');
  assert.match(other.errors![0].message, /was used for another request/);
  const hooked = (to: string) =>
    gql(
      url,
      'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id } }',
      { i: { caption: 'a flower', count: 1, idempotencyKey: 'order-3', webhook: { url: to } } },
      key,
    );
  await setKeyLimits(running.db.prisma, id, { rateLimitPerMinute: 100 });
  const withHook = (await hooked('https://93.184.215.14/a')).data!.generateImages.id;
  assert.equal((await hooked('https://93.184.215.14/a')).data!.generateImages.id, withHook);
  assert.equal(codeOf(await hooked('https://93.184.215.14/b')), 'BAD_USER_INPUT');
  // a caption with a lone surrogate (stored as U+FFFD) is still the same request; a key with one is refused (two
  // such keys would be stored as one)
  const lone = (caption: string, idempotencyKey: string) =>
    gql(
      url,
      'mutation($i: GenerateImagesInput!) { generateImages(input: $i) { id captions } }',
      { i: { caption, count: 1, seed: 5, idempotencyKey } },
      key,
    );
  const odd = (await lone('a \ud800 flower', 'order-4')).data!.generateImages;
  assert.deepEqual(odd.captions, ['a \ufffd flower']);
  assert.equal((await lone('a \ud800 flower', 'order-4')).data!.generateImages.id, odd.id);
  assert.equal(codeOf(await lone('a flower', 'order-\ud800')), 'BAD_USER_INPUT');
});

test('the per-key rate limit answers RATE_LIMITED with a retry hint, for that key only', async () => {
  let limited: { code?: string; retryAfterSeconds?: number } | undefined;
  for (let i = 0; i < 10 && !limited; i++) {
    const r = await gql(url, 'mutation { generateImages(input: { caption: "a flower", count: 1 }) { id } }', {}, keyB);
    if (r.errors) limited = r.errors[0].extensions as typeof limited;
  }
  assert.equal(limited?.code, 'RATE_LIMITED');
  // room comes back when the second of the minute's first request has left the minute: within 61 s
  assert.ok(limited!.retryAfterSeconds! >= 1 && limited!.retryAfterSeconds! <= 61);
  assert.equal(
    codeOf(await gql(url, 'mutation { generateImages(input: { caption: "a flower", count: 1 }) { id } }', {}, keyA)),
    undefined,
  );
});

test('concurrent requests of one key cannot pass its quota: count and insert are one step', async () => {
  const key = (await createApiKey(running.db.prisma, 'team burst')).key;
  const results = await Promise.all(
    Array.from({ length: 30 }, () =>
      gql(url, 'mutation { generateImages(input: { caption: "a flower", count: 1 }) { id } }', {}, key),
    ),
  );
  const accepted = results.filter((r) => !r.errors).length;
  assert.equal(accepted, 8, `${accepted} of 30 concurrent requests accepted with a limit of 8 a minute`);
  assert.ok(results.filter((r) => r.errors).every((r) => codeOf(r) === 'RATE_LIMITED'));
});

test("a key's own limits replace the server's: requests a minute, images a day", async () => {
  const { id, key } = await createApiKey(running.db.prisma, 'team small');
  assert.ok(await setKeyLimits(running.db.prisma, id, { rateLimitPerMinute: 20, imagesPerDay: 5 }));
  const ask = (count: number) =>
    gql(
      url,
      'mutation($n: Int) { generateImages(input: { caption: "a flower", count: $n }) { id } }',
      { n: count },
      key,
    );
  assert.equal(codeOf(await ask(6)), 'BAD_USER_INPUT', 'more than a whole day');
  assert.equal(codeOf(await ask(4)), undefined);
  const over = await ask(2);
  assert.equal(codeOf(over), 'RATE_LIMITED');
  assert.match(over.errors![0].message, /more than 5 images in 24 hours/);
  const retry = (over.errors![0].extensions as { retryAfterSeconds: number }).retryAfterSeconds;
  assert.ok(retry > 86_000 && retry <= 86_460, `retry in ${retry} s`); // a day after its minute ends
  assert.equal(codeOf(await ask(1)), undefined, 'what is left of the day');
  // deleting what was drawn does not give the day back
  await gql(
    url,
    'mutation($f: DeleteGenerationsInput!) { deleteGenerations(filter: $f) }',
    { f: { createdBefore: new Date().toISOString() } },
    key,
  );
  assert.equal(codeOf(await ask(1)), 'RATE_LIMITED');
  // back to the server's limits (8 a minute here, no daily cap): the ninth request this minute is refused
  assert.ok(await setKeyLimits(running.db.prisma, id, { rateLimitPerMinute: null, imagesPerDay: null }));
  const codes = [];
  for (let i = 0; i < 7; i++) codes.push(codeOf(await ask(1)));
  assert.deepEqual(codes, [undefined, undefined, undefined, undefined, undefined, undefined, 'RATE_LIMITED']);
});

test("usage: the calling key's generations and images per UTC day, kind and model", async () => {
  const { key } = await createApiKey(running.db.prisma, 'team usage');
  await finishedWith(key, 'mutation { generateImages(input: { caption: "a flower", count: 3 }) { id } }');
  await finishedWith(key, 'mutation { interpolateNoise(input: { caption: "a flower", steps: 2 }) { id } }');
  await finishedWith(key, 'mutation { generateImages(input: { caption: "a white flower", count: 1 }) { id } }');
  const today = new Date().toISOString().slice(0, 10);
  const usage = (await gql(url, '{ usage { day kind model generations images } }', {}, key)).data!.usage;
  assert.deepEqual(usage, [
    { day: today, kind: 'NOISE_INTERPOLATION', model: 'tiny', generations: 1, images: 2 },
    { day: today, kind: 'TEXT_TO_IMAGE', model: 'tiny', generations: 2, images: 4 },
  ]);
  const past = await gql(url, '{ usage(from: "2020-01-01T00:00:00Z", to: "2020-02-01T00:00:00Z") { day } }', {}, key);
  assert.deepEqual(past.data!.usage, []);
  // the default 30 days before a `to` in the first month of year 1 start with year 1 (year 0 is not a date here)
  const first = await gql(url, '{ usage(to: "0001-01-10T00:00:00Z") { day } }', {}, key);
  assert.deepEqual(first.data?.usage, [], JSON.stringify(first.errors));
  for (const range of ['from: "2021-01-01T00:00:00Z", to: "2020-01-01T00:00:00Z"', 'from: "2020-01-01T00:00:00Z"'])
    assert.equal(codeOf(await gql(url, `{ usage(${range}) { day } }`, {}, key)), 'BAD_USER_INPUT', range);
});

test("each API instance keeps a key's owner until a revocation's NOTIFY: a revoked key is UNAUTHENTICATED at once", async () => {
  const { id, key } = await createApiKey(running.db.prisma, 'kept');
  const ask = async () => codeOf(await gql(url, '{ generations(first: 1) { edges { cursor } } }', {}, key));
  assert.equal(await ask(), undefined);
  // revoked behind the service's back (no NOTIFY): the instance still has the key, so it was not read again
  await running.db.query('UPDATE "ApiKey" SET "revokedAt" = now() WHERE "id" = $1', [id]);
  assert.equal(await ask(), undefined);
  await running.db.query('UPDATE "ApiKey" SET "revokedAt" = NULL WHERE "id" = $1', [id]);
  await revokeApiKey(running.db.prisma, id);
  for (let i = 0; (await ask()) !== 'UNAUTHENTICATED'; i++) {
    // the key is kept a minute without one (KEEP_MS): within 10 s is the NOTIFY's doing, on a loaded machine too
    assert.ok(i < 200, 'refused within seconds of the revocation');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await ask(), 'UNAUTHENTICATED');
});

test('KeyOwners keeps nothing before it listens for revocations, and starts once', async () => {
  const { id, key } = await createApiKey(running.db.prisma, 'unstarted');
  const owners = new KeyOwners(running.db);
  assert.equal(await owners.of(key), id);
  await running.db.query('UPDATE "ApiKey" SET "revokedAt" = now() WHERE "id" = $1', [id]);
  assert.equal(await owners.of(key), null, 'read again: a revocation it could not hear of counts at once');
  await owners.start(() => {});
  await assert.rejects(
    owners.start(() => {}),
    /started twice/,
  );
  await owners.stop();
});

test('generations(ids:) reads the named generations of the calling key only, in one page', async () => {
  const [keyC, keyD] = [
    (await createApiKey(running.db.prisma, 'team c')).key,
    (await createApiKey(running.db.prisma, 'team d')).key,
  ];
  const make = async (key: string) =>
    (await gql(url, 'mutation { generateImages(input: { caption: "a red flower", count: 1 }) { id } }', {}, key)).data!
      .generateImages.id as string;
  const [first, second, other] = [await make(keyC), await make(keyC), await make(keyD)];
  const missing = '00000000-0000-4000-8000-000000000000';
  const read = (ids: string[], key = keyC) =>
    gql(url, 'query($ids: [ID!]) { generations(ids: $ids) { edges { node { id } } } }', { ids }, key);
  const idsOf = (r: Awaited<ReturnType<typeof read>>) =>
    r.data!.generations.edges.map((e: { node: { id: string } }) => e.node.id);
  // newest first; another key's and a missing id are left out; an id in upper case or twice counts once
  assert.deepEqual(idsOf(await read([first, other, missing, second.toUpperCase(), second])), [second, first]);
  assert.deepEqual(idsOf(await read([first])), [first]);
  assert.deepEqual(idsOf(await read([])), []);
  assert.deepEqual(idsOf(await read([other], keyD)), [other]);
  assert.equal(codeOf(await read([first, 'not-an-id'])), 'BAD_USER_INPUT');
  assert.equal(codeOf(await read(Array.from({ length: 101 }, () => first))), 'BAD_USER_INPUT');
});
