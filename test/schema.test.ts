import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { type ExecutionResult, execute, parse, subscribe } from 'graphql';
import { announce, createGenerationPubSub } from '../src/events/bridge.ts';
import type { GenerationRow, GenerationService, ImageMeta } from '../src/generations/service.ts';
import { buildGanvasSchema } from '../src/schema/build.ts';
import { type Context, PerGeneration, generationReads } from '../src/schema/context.ts';
import type { QueueWatch } from '../src/events/queue-watch.ts';
import { LiveReads } from '../src/schema/live.ts';
import { Documents, isDocument } from '../src/api/documents.ts';
import { SCHEMA_FILE, TYPES_FILE, printGanvasSchema } from '../src/schema/emit.ts';

test('schema.graphql and examples/schema-types.ts are what the code serves (run `npm run schema` after changing it)', async () => {
  const { sdl, types } = await printGanvasSchema();
  assert.equal(await readFile(SCHEMA_FILE, 'utf8'), sdl);
  assert.equal(await readFile(TYPES_FILE, 'utf8'), types);
});

test('a Generation object reads its images once for all its fields; generations in one tick share one query', async () => {
  const calls: string[][] = [];
  const images = new PerGeneration<{ generationId: string }>(async (ids) => (calls.push([...ids]), []));
  const a = { id: 'a' };
  const b = { id: 'b' };
  await Promise.all([images.of(a), images.of(a), images.of(b)]); // images + animationUrl of a, images of b
  assert.deepEqual(calls, [['a', 'b']]);
  await images.of({ id: 'a' }); // the next subscription event: a fresh object is read again
  assert.deepEqual(calls, [['a', 'b'], ['a']]);
});

test('a generation whose row has progress 0 (no pass stored yet) costs no images query', async () => {
  const asked: string[][] = [];
  const service = { imagesOf: async (ids: readonly string[]) => (asked.push([...ids]), []) };
  const { images } = generationReads(service as unknown as GenerationService, {} as QueueWatch);
  assert.deepEqual(await images.of({ id: 'queued', progress: 0 }), []);
  await Promise.all([images.of({ id: 'drawing', progress: 0.25 }), images.of({ id: 'done', progress: 1 })]);
  assert.deepEqual(asked, [['drawing', 'done']]);
});

test('an image listed under its generation answers that generation: no read of it again', async () => {
  const id = '00000000-0000-4000-8000-000000000002';
  const row = { id, apiKeyId: null, status: 'SUCCEEDED', progress: 1, captions: ['a red flower'] } as GenerationRow;
  let reads = 0;
  const service = {
    // asked for its images, a generation reads them with its row
    requireGenerationWithImages: async () => (
      reads++,
      {
        row,
        images: [
          { generationId: id, index: 0 },
          { generationId: id, index: 1 },
        ] as ImageMeta[],
      }
    ),
  };
  const images = new PerGeneration<ImageMeta>(async () => assert.fail('the images were read with the generation'));
  const result = await execute({
    schema: await buildGanvasSchema(createGenerationPubSub()),
    document: parse(`{ generation(id: "${id}") { images { index generation { id status } } } }`),
    contextValue: { owner: null, service, images } as unknown as Context,
  });
  assert.deepEqual(JSON.parse(JSON.stringify(result)), {
    data: {
      generation: {
        images: [0, 1].map((index) => ({ index, generation: { id, status: 'SUCCEEDED' } })),
      },
    },
  });
  assert.equal(reads, 1, 'the generation is read once, for its own field');
});

test('images shared by two reads of one generation in one request each answer the read they were listed under', async () => {
  const id = '00000000-0000-4000-8000-000000000003';
  const imageId = '00000000-0000-4000-8000-000000000004';
  const statuses = ['RUNNING', 'SUCCEEDED'];
  const service = {
    requireImage: async () => ({ id: imageId, generationId: id, index: 0 }) as ImageMeta,
    // two snapshots: a pass was stored between the two reads
    requireGeneration: async () => ({ id, apiKeyId: null, status: statuses.shift(), progress: 1 }) as GenerationRow,
  };
  const rows = [{ generationId: id, index: 0 }] as ImageMeta[];
  const images = new PerGeneration<ImageMeta>(async () => rows); // both reads in one batch: one row object for both
  const result = await execute({
    schema: await buildGanvasSchema(createGenerationPubSub()),
    document: parse(`{
      a: image(id: "${imageId}") { generation { status images { generation { status } } } }
      b: image(id: "${imageId}") { generation { status images { generation { status } } } }
    }`),
    contextValue: { owner: null, service, images } as unknown as Context,
  });
  const data = JSON.parse(JSON.stringify(result.data));
  assert.deepEqual(data, {
    a: { generation: { status: 'RUNNING', images: [{ generation: { status: 'RUNNING' } }] } },
    b: { generation: { status: 'SUCCEEDED', images: [{ generation: { status: 'SUCCEEDED' } }] } },
  });
});

test("subscribers of one change share one read of it; the next change is read again; another owner's is NOT_FOUND", async () => {
  let reads = 0;
  const service = {
    generationWithImages: async (id: string) => (
      reads++,
      { row: { id, apiKeyId: 'owner', status: 'RUNNING' } as GenerationRow, images: [] }
    ),
  };
  const pubsub = createGenerationPubSub();
  const live = new LiveReads(service as unknown as GenerationService, pubsub, new PerGeneration(async () => []));
  try {
    const first = await Promise.all(Array.from({ length: 100 }, () => live.generation('owner', 'g1')));
    assert.equal(reads, 1);
    assert.ok(
      first.every((g) => g === first[0]),
      'one object: its images and estimates are read once too',
    );
    announce(pubsub, 'g1');
    const second = await Promise.all(Array.from({ length: 100 }, () => live.generation('owner', 'g1')));
    assert.equal(reads, 2);
    assert.notEqual(second[0], first[0]);
    await live.generation('owner', 'g2');
    assert.equal(reads, 3);
    await assert.rejects(live.generation('someone else', 'g1'), /does not exist/);
  } finally {
    live.close();
  }
});

test('subscribers of one change read it with its images in one read, and the next change again (GraphQL executor)', async () => {
  const id = '00000000-0000-4000-8000-000000000001';
  const pubsub = createGenerationPubSub();
  let reads = 0;
  const row = { id, apiKeyId: 'owner', status: 'RUNNING', progress: 0.5, captions: ['a red flower'] } as GenerationRow;
  const service = {
    generationWithImages: async () => (reads++, { row, images: [{ generationId: id, index: 0 }] as ImageMeta[] }),
  };
  const asked: string[] = [];
  const images = new PerGeneration<ImageMeta, { id: string; progress: number }>(
    async (ids) => (asked.push(...ids), []),
  );
  const live = new LiveReads(service as unknown as GenerationService, pubsub, images);
  const contextValue = { owner: 'owner', pubsub, live, images } as unknown as Context;
  const schema = await buildGanvasSchema(pubsub);
  const document = parse(`subscription { generationUpdated(id: "${id}") { status images { index } } }`);
  try {
    const streams = (await Promise.all(
      Array.from({ length: 3 }, () => subscribe({ schema, document, contextValue })),
    )) as AsyncGenerator<ExecutionResult>[];
    const first = await Promise.all(streams.map((s) => s.next()));
    for (const r of first)
      assert.deepEqual(JSON.parse(JSON.stringify(r.value.data)), {
        generationUpdated: { status: 'RUNNING', images: [{ index: 0 }] },
      });
    assert.equal(reads, 1, 'one read for the three subscribers');
    assert.deepEqual(asked, [], 'its images came with it: no images query');
    announce(pubsub, id);
    await Promise.all(streams.map((s) => s.next()));
    assert.equal(reads, 2, 'the next change is read again, once');
    assert.deepEqual(asked, []);
    await Promise.all(streams.map((s) => s.return(undefined)));
  } finally {
    live.close();
  }
});

test('a client that stops following a queued generation frees its watch and queue follow at once, not at its next change', async () => {
  const id = '00000000-0000-4000-8000-000000000002';
  const pubsub = createGenerationPubSub();
  const service = {
    generationWithImages: async () => ({
      row: { id, apiKeyId: 'owner', status: 'QUEUED', captions: ['a red flower'] } as GenerationRow,
      images: [],
    }),
  };
  const live = new LiveReads(service as unknown as GenerationService, pubsub, new PerGeneration(async () => []));
  let following = 0;
  const queue = { follow: () => (following++, () => following--) };
  const contextValue = { owner: 'owner', pubsub, live, queue } as unknown as Context;
  const schema = await buildGanvasSchema(pubsub);
  const document = parse(`subscription { generationUpdated(id: "${id}") { status } }`);
  try {
    const stream = (await subscribe({ schema, document, contextValue })) as AsyncGenerator<ExecutionResult>;
    const first = (await stream.next()).value as ExecutionResult<{ generationUpdated: { status: string } }>;
    assert.equal(first.data?.generationUpdated.status, 'QUEUED');
    assert.equal(following, 1);
    const waiting = stream.next(); // no change comes (no worker serves its model, say)
    const stopped = Promise.all([waiting, stream.return(undefined)]);
    const outcome = await Promise.race([stopped, new Promise((r) => setTimeout(() => r('still open'), 1000))]);
    assert.notEqual(outcome, 'still open');
    assert.equal((await waiting).done, true, 'nothing more is sent for the operation');
    assert.equal(following, 0);
  } finally {
    live.close();
  }
});

test('WebSocket documents are parsed and validated once per text; refused or large ones are not kept; the least used go first', async () => {
  const follow = 'subscription($id: ID!) { generationUpdated(id: $id) { status images { url } } }';
  const documents = new Documents(await buildGanvasSchema(createGenerationPubSub()), 10 * follow.length);
  const first = documents.check(follow);
  assert.ok(isDocument(first));
  assert.equal(documents.check(follow), first, 'the same text: the same document, not parsed again');

  const codes = (d: ReturnType<Documents['check']>) => (isDocument(d) ? [] : d.map((e) => e.extensions.code ?? null));
  assert.deepEqual(codes(documents.check('subscription { generationUpdated(')), ['GRAPHQL_PARSE_FAILED']);
  assert.deepEqual(codes(documents.check('{ modles { name } }')), [null]); // the server's onError gives its code
  const deep = `{ generations { edges { node { ${'images { generation { '.repeat(5)}id${' } }'.repeat(5)} } } } }`;
  assert.deepEqual(codes(documents.check(deep)), ['QUERY_TOO_COMPLEX']); // ganvas's own rules too
  const large = `${follow} # ${'x'.repeat(follow.length)}`;
  assert.ok(isDocument(documents.check(large)));
  assert.equal(documents.size, 1, 'refused documents, and one over a tenth of the store, are not kept');

  // documents of about 26 characters: the store holds some 30 of them besides `follow`
  const small = (i: number) => `{ m${i}: models { name } }`;
  const kept = documents.check(small(0));
  for (let i = 1; i < 60; i++) {
    documents.check(small(i));
    documents.check(follow); // used all along: never the least recently used
  }
  assert.ok(documents.size > 20 && documents.size < 60, `${documents.size} kept`);
  assert.equal(documents.check(follow), first);
  assert.notEqual(documents.check(small(0)), kept, 'the first small one went, and is parsed again');
});
