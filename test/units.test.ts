/**
 * The request path's plain functions: what each image is made from (plan.ts, interpolation.ts, phi-cache.ts),
 * request limits (limits.ts), error codes (api/errors.ts), a loop's wait (events/doze.ts), a socket's writes of one
 * tick (api/sockets.ts), one event's execution shared by its subscribers (api/shared-executions.ts), pages kept per
 * owner (generations/owner-pages.ts), queue estimates from a snapshot (events/queue-watch.ts).
 */
import { once } from 'node:events';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ExecutionResult,
  GraphQLError,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  buildSchema,
  execute,
  parse,
} from 'graphql';
import { errorFormatter } from '../src/api/errors.ts';
import { coalesceWrites } from '../src/api/sockets.ts';
import { sharedSubscribe } from '../src/api/shared-executions.ts';
import type { Generation } from '../src/db/generated/client.ts';
import { logFailure } from '../src/db/unavailable.ts';
import { Doze } from '../src/events/doze.ts';
import { UserError, rateLimited } from '../src/errors.ts';
import { checkCaption, checkDate, checkId, checkRange, isId } from '../src/generations/limits.ts';
import { ModelCatalog } from '../src/generations/models.ts';
import { EVERY_OWNER, OwnerPages } from '../src/generations/owner-pages.ts';
import { createGenerationPubSub } from '../src/events/bridge.ts';
import { QueueWatch } from '../src/events/queue-watch.ts';
import type { PrismaClient } from '../src/db/generated/client.ts';
import { PhiCache } from '../src/gpu-worker/phi-cache.ts';
import { captionsOf, embeddingOf, planImages } from '../src/gpu-worker/plan.ts';
import { interpolate } from '../src/model/interpolation.ts';
import { noiseForSeed } from '../src/model/random.ts';
import { createLogger, silentLogger } from '../src/ops/log.ts';
import pino from 'pino';

const assertClose = (actual: Float32Array, expected: ArrayLike<number>) =>
  assert.ok(
    actual.length === expected.length && Array.from(expected).every((v, i) => Math.abs(actual[i] - v) < 1e-5),
    `${actual.join()} != ${Array.from(expected).join()}`,
  );

const generation = (g: Partial<Generation>): Generation =>
  ({ captions: ['a red flower'], seed: 7, endSeed: null, imageCount: 3, ...g }) as Generation;

test('text to image: image i is z(seed + i) and phi(caption); seeds wrap as 32-bit integers; stored images are skipped', () => {
  const plans = planImages(generation({ kind: 'TEXT_TO_IMAGE', seed: 2 ** 31 - 2 }), 8, new Set([1]));
  assert.deepEqual(
    plans.map((p) => [p.index, p.seed, p.mix]),
    [
      [0, 2 ** 31 - 2, null],
      [2, -(2 ** 31), null],
    ],
  );
  assert.deepEqual(plans[1].z, noiseForSeed(-(2 ** 31), 8));
  assert.deepEqual(plans[0].h, { caption: 'a red flower' });
});

test("a seed's noise as long as the model asks (z, then the conditioning noise), its first values the seed's z", () => {
  const [long] = planImages(generation({ kind: 'TEXT_TO_IMAGE' }), 12, new Set());
  assert.equal((long.z as Float32Array).length, 12);
  assert.deepEqual((long.z as Float32Array).subarray(0, 8), noiseForSeed(7, 8));
  const moving = planImages(generation({ kind: 'NOISE_INTERPOLATION', endSeed: 9, imageCount: 3 }), 12, new Set());
  assert.deepEqual(moving[2].z, noiseForSeed(9, 12));
  assert.equal((moving[1].z as Float32Array).length, 12);
});

test('interpolations: captions mix i / (steps - 1) with z fixed, or z moves with the caption fixed', () => {
  const captions = planImages(
    generation({ kind: 'CAPTION_INTERPOLATION', captions: ['red', 'blue'], imageCount: 3 }),
    4,
    new Set(),
  );
  assert.deepEqual(
    captions.map((p) => [p.mix, p.caption]),
    [
      [0, 'red'],
      [0.5, 'blue'],
      [1, 'blue'],
    ],
  );
  assert.ok(captions.every((p) => p.z instanceof Float32Array && p.z.join() === noiseForSeed(7, 4).join()));
  const phi = new Map([
    ['red', Float32Array.from([0, 2])],
    ['blue', Float32Array.from([4, 2])],
  ]);
  // about the centre (2, 0) the ends are (-2, 2) and (2, 2): the middle keeps their distance 2 sqrt 2
  assertClose(embeddingOf(captions[1].h, phi, Float32Array.from([2, 0])), [2, 2 * Math.SQRT2]);
  assert.deepEqual(embeddingOf(captions[0].h, phi, Float32Array.from([2, 0])), phi.get('red'));
  assert.deepEqual(captionsOf(captions[1].h), ['red', 'blue']);

  const noise = planImages(
    generation({ kind: 'NOISE_INTERPOLATION', seed: 1, endSeed: 2, imageCount: 2 }),
    4,
    new Set(),
  );
  assert.deepEqual(noise[0].z, noiseForSeed(1, 4));
  assert.deepEqual(noise[1].z, noiseForSeed(2, 4));
  const three = planImages(generation({ kind: 'NOISE_INTERPOLATION', seed: 1, endSeed: 2 }), 4, new Set());
  assertClose(three[1].z as Float32Array, interpolate(noiseForSeed(1, 4), noiseForSeed(2, 4), 0.5));
  const style = planImages(generation({ kind: 'STYLE_TRANSFER', captions: ['a', 'b'], imageCount: 2 }), 4, new Set());
  assert.deepEqual(
    style.map((p) => [p.caption, p.z]),
    [
      ['a', 'style'],
      ['b', 'style'],
    ],
  );
});

test("interpolate: exact ends; between, the linear mix about the centre, scaled to the mix of the ends' distances", () => {
  const a = Float32Array.from([3, 0]);
  const b = Float32Array.from([0, 1]);
  assert.deepEqual(interpolate(a, b, 0), a);
  assert.deepEqual(interpolate(a, b, 1), b);
  // about the origin: direction of 0.75 a + 0.25 b, length 0.75 * 3 + 0.25 * 1
  const quarter = interpolate(a, b, 0.25);
  assertClose(quarter, [(2.25 * 2.5) / Math.hypot(2.25, 0.25), (0.25 * 2.5) / Math.hypot(2.25, 0.25)]);
  // linear interpolation would pass through the centre; this keeps the distance, except exactly there
  const centre = Float32Array.from([1, 1]);
  assertClose(interpolate(Float32Array.from([1, 3]), Float32Array.from([3, 1]), 0.5, centre), [
    1 + Math.SQRT2,
    1 + Math.SQRT2,
  ]);
  assertClose(interpolate(Float32Array.from([1, 3]), Float32Array.from([1, -1]), 0.5, centre), [1, 1]);
});

test('limits: captions lose control characters, count code points; ranges and ids are checked, ids stored lower-case', () => {
  assert.equal(checkCaption('caption', '  a\tred\nflower\u0000 '), 'a red flower');
  assert.throws(() => checkCaption('caption', ' \n '), /caption is empty/);
  assert.equal(checkCaption('caption', '🌸'.repeat(500)).length, 1000, '500 emoji are 500 characters');
  assert.throws(() => checkCaption('caption', 'a'.repeat(501)), /longer than 500/);
  assert.equal(
    checkCaption('caption', 'a \udc00 🌸 \ud800'),
    'a \ufffd 🌸 \ufffd',
    'lone surrogates as Postgres stores them',
  );
  assert.equal(checkRange('count', 16, { min: 1, max: 16 }), 16);
  assert.throws(() => checkRange('count', 1.5, { min: 1, max: 16 }), /count must be from 1 to 16, got 1.5/);
  const day = new Date('2026-12-01T00:00:00Z');
  assert.equal(checkDate('to', day), day);
  for (const edge of ['0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z']) checkDate('to', new Date(edge));
  for (const bad of ['-005000-01-01T00:00:00Z', '0000-12-31T23:59:59Z', '+010000-01-01T00:00:00Z', 'nonsense'])
    assert.throws(() => checkDate('to', new Date(bad)), /to must be a date in the years 1 to 9999/, bad);
  const id = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11';
  assert.equal(isId(id), true);
  assert.equal(checkId('id', id), id.toLowerCase());
  for (const bad of ['', 'a0eebc99', `${id}x`, 'g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']) {
    assert.equal(isId(bad), false, bad);
    assert.throws(
      () => checkId('id', bad),
      (e: UserError) => e.code === 'BAD_USER_INPUT',
    );
  }
});

test("errors: the caller's keep their code and details; a bug is INTERNAL_SERVER_ERROR without its message", async () => {
  const format = errorFormatter(silentLogger());
  const limited = format({ message: 'x' }, new GraphQLError('x', { originalError: rateLimited('slow down', 12) }));
  assert.deepEqual(limited, { message: 'slow down', extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 12 } });
  // graphql-js's own errors, as it raises them: coercing the caller's variables and arguments, serialising our value
  const schema = buildSchema('type Query { n(x: Int!): Int }');
  const codeOf = async (query: string, variableValues: Record<string, unknown>) => {
    const { errors } = await execute({ schema, document: parse(query), rootValue: { n: () => 'abc' }, variableValues });
    assert.equal(errors?.length, 1, query);
    return format(errors[0].toJSON(), errors[0]).extensions?.code;
  };
  assert.equal(await codeOf('query($x: Int!) { n(x: $x) }', { x: 'a' }), 'BAD_USER_INPUT', 'a variable');
  assert.equal(await codeOf('query($x: Int = 1) { n(x: $x) }', { x: null }), 'BAD_USER_INPUT', 'an argument');
  assert.equal(await codeOf('{ n(x: 1) }', {}), 'INTERNAL_SERVER_ERROR', 'our value that does not serialise');
  const bug = format(
    { message: 'secret path /etc/x', path: ['generation'] },
    new GraphQLError('secret', { originalError: new TypeError('secret path /etc/x') }),
  );
  assert.deepEqual(bug, {
    message: 'internal error',
    locations: undefined,
    path: ['generation'],
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  });
});

test('phi cache: captions drawn lately skip the encoder; the least recently used leave first', async () => {
  const asked: string[][] = [];
  const cache = new PhiCache(async (captions) => {
    asked.push(captions);
    return captions.map((c) => Float32Array.of(c.length));
  }, 2);
  const of = async (captions: string[]) =>
    Object.fromEntries([...(await cache.of(captions))].map(([c, v]) => [c, v[0]]));
  assert.deepEqual(await of(['a', 'bb', 'a']), { a: 1, bb: 2 });
  assert.deepEqual(await of(['bb', 'ccc']), { bb: 2, ccc: 3 }, 'bb from the cache; a leaves (capacity 2)');
  assert.deepEqual(await of(['a', 'ccc']), { a: 1, ccc: 3 });
  assert.deepEqual(asked, [['a', 'bb'], ['ccc'], ['a']]);
});

test('phi cache: a caption being embedded is shared, not embedded twice; a failed call keeps nothing', async () => {
  const asked: string[][] = [];
  let fail = false;
  const cache = new PhiCache(async (captions) => {
    asked.push(captions);
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (fail) throw new Error('the encoder failed');
    return captions.map((c) => Float32Array.of(c.length));
  });
  // an idle worker's call at a request's admission (its NOTIFY), then the draw's while it runs
  const early = cache.of(['a', 'bb']);
  const draw = await cache.of(['bb', 'ccc']);
  assert.deepEqual(
    [...draw].map(([c, v]) => [c, v[0]]),
    [
      ['bb', 2],
      ['ccc', 3],
    ],
  );
  assert.deepEqual(asked, [['a', 'bb'], ['ccc']], 'bb waited for the early call');
  assert.equal((await early).get('a')![0], 1);

  fail = true;
  const failing = cache.of(['dddd']);
  await assert.rejects(cache.of(['dddd']), /the encoder failed/); // shares the failing call
  await assert.rejects(failing, /the encoder failed/);
  fail = false;
  assert.equal((await cache.of(['dddd'])).get('dddd')![0], 4, 'asked again, not the failure kept');
  assert.deepEqual(asked.slice(2), [['dddd'], ['dddd']]);
});

test('Doze: a wake ends the sleep, also one that came while the loop was busy; turn() forgets older ones', async () => {
  const doze = new Doze();
  const timed = async (ms: number) => {
    const start = performance.now();
    await doze.sleep(ms);
    return performance.now() - start;
  };
  doze.wake(); // before the turn: forgotten
  doze.turn();
  assert.ok((await timed(50)) >= 45, 'not woken: the whole wait');
  doze.turn();
  doze.wake(); // while busy: kept
  assert.ok((await timed(5_000)) < 100, 'woken while busy: at once');
  doze.turn();
  setTimeout(() => doze.wake(), 20);
  assert.ok((await timed(5_000)) < 1_000, 'woken while asleep: early');
});

test("a connection's writes of one tick leave together at its end; asking twice in a tick holds them once", async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [peer] = await accepted;
  const chunks: string[] = [];
  peer.on('data', (d: Buffer) => chunks.push(d.toString()));
  try {
    for (const word of ['one', 'two', 'three']) {
      coalesceWrites(client);
      client.write(word);
    }
    assert.equal(client.writableCorked, 1); // held, once
    assert.equal(client.writableLength, 11); // nothing written yet
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(client.writableCorked, 0); // released at the tick's end
    client.end();
    await once(peer, 'end');
    assert.deepEqual(chunks, ['onetwothree']);
    coalesceWrites(client); // a later tick holds again
    assert.equal(client.writableCorked, 1);
  } finally {
    client.destroy();
    peer.destroy();
    server.close();
  }
});

test("one event's execution is shared by the subscriptions it wakes with one key; a later event executes afresh", async () => {
  // every subscription's source waits for the next of the events the test sends
  let send: (event: string) => void = () => {};
  let sent = new Promise<string>((resolve) => (send = resolve));
  const emit = (event: string) => {
    const fire = send;
    sent = new Promise<string>((resolve) => (send = resolve));
    fire(event);
  };
  let open = 0;
  const events = (): AsyncIterableIterator<string> => {
    open++;
    let closed = false;
    const it: AsyncIterableIterator<string> = {
      [Symbol.asyncIterator]: () => it,
      next: async () => (closed ? { value: undefined, done: true } : { value: await sent, done: false }),
      return: async () => {
        if (!closed) open--;
        closed = true;
        return { value: undefined, done: true };
      },
    };
    return it;
  };
  let executions = 0;
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { x: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        changed: {
          type: GraphQLString,
          subscribe: events,
          resolve: (root: string, _args, ctx: { owner: string }) => `${root} for ${ctx.owner} (${++executions})`,
        },
      },
    }),
  });
  const subscribe = sharedSubscribe((args, root) => `${(args.contextValue as { owner: string }).owner}:${root}`);
  const document = parse('subscription { changed }');
  const owners = [...Array(20).fill('a'), ...Array(5).fill('b')];
  const streams = await Promise.all(
    owners.map(
      async (owner) =>
        (await subscribe({ schema, document, contextValue: { owner } })) as AsyncIterator<ExecutionResult>,
    ),
  );
  const next = async () => {
    const results = Promise.all(streams.map((s) => s.next()));
    await new Promise((r) => setImmediate(r));
    emit('e1');
    return (await results).map((r) => (r.value as ExecutionResult).data?.changed);
  };
  assert.deepEqual(await next(), [...Array(20).fill('e1 for a (1)'), ...Array(5).fill('e1 for b (2)')]);
  assert.equal(executions, 2, 'one execution per key, not one per subscription');
  // the same root in a later turn: its state may have moved on (a queue place), so the first results are not reused
  assert.deepEqual(await next(), [...Array(20).fill('e1 for a (3)'), ...Array(5).fill('e1 for b (4)')]);
  // a subscription stopped while it waits closes its source at once, not at the next event
  assert.equal(open, owners.length);
  const waiting = streams[0].next();
  await streams[0].return!();
  assert.equal(open, owners.length - 1);
  emit('e2');
  await waiting;
});

test('the model catalog, kept fresh while requests come, answers them without a read of their own', async () => {
  let reads = 0;
  let failing = false;
  const row = {
    name: 'tiny',
    imageSize: 64,
    variant: 'x',
    untrained: false,
    trainingSteps: 0,
    summary: '',
    workers: 1,
  };
  const prisma = {
    $queryRaw: () => (reads++, failing ? Promise.reject(new Error('down')) : Promise.resolve([row])),
  } as unknown as PrismaClient;
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const alone = new ModelCatalog(prisma, 'tiny');
  await alone.list();
  await wait(1200);
  const before = reads;
  await alone.list();
  assert.equal(reads, before + 1, 'without keepFresh, a read older than a second is read again by the request');

  const kept = new ModelCatalog(prisma, 'tiny');
  const stop = kept.keepFresh();
  try {
    await kept.list();
    await wait(1200);
    const n = reads;
    assert.ok(n >= 2, `read in the background meanwhile (${n} reads)`);
    let settled = false;
    const asked = kept.list().then(() => (settled = true));
    await null;
    assert.equal(settled, true, 'answered at once, from the background read');
    await asked;
    assert.equal(reads, n, 'no read of its own');
    failing = true; // a failed background read leaves the last good one (half a second old) until it is a second old
    for (const m = reads; reads === m;) await wait(10);
    assert.equal((await kept.list())[0].name, 'tiny');
    await wait(1100);
    await assert.rejects(kept.list(), /down/, 'then a request reads itself, and fails as the database does');
  } finally {
    stop();
  }
});

test("a background task's failure: the database unavailable or too slow is a warning, anything else an error", () => {
  const lines: { level: number; msg: string; err?: unknown }[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const timeout = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
  logFailure(log, 'retention: sweep failed', timeout);
  logFailure(log, 'retention: sweep failed', new TypeError('x is undefined'));
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.err !== undefined]),
    [
      [
        40,
        'retention: sweep failed: the database is unavailable (canceling statement due to statement timeout)',
        false,
      ],
      [50, 'retention: sweep failed', true],
    ],
  );
});

test('LOG_LEVEL and LOG_FORMAT out of their values are refused with the values they take', () => {
  assert.throws(
    () => createLogger({ LOG_LEVEL: 'verbose' }, false),
    /^Error: LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"$/,
  );
  assert.throws(() => createLogger({ LOG_FORMAT: 'xml' }, false), /LOG_FORMAT must be json or pretty, got "xml"/);
  assert.equal(createLogger({ LOG_LEVEL: 'silent' }, false).level, 'silent');
});

/**
 * OwnerPages over pages that are lists of rows of 100 bytes each (a page also counts its key's: 8 bytes for the
 * keys below), each read counted, with its answers' origins.
 */
function ownerPages(limits = { pagesPerOwner: 10, bytesPerOwner: 10_000, bytes: 100_000, maxAgeMs: 60_000 }) {
  let hearing = true;
  const answered: string[] = [];
  const pages = new OwnerPages<string[]>({
    hearing: () => hearing,
    sizeOf: (rows) => 100 * rows.length,
    limits,
    answered: (from) => answered.push(from),
  });
  let reads = 0;
  const read = (owner: string | null, key: string, rows = 1) =>
    pages.read(owner, key, async () => {
      reads++;
      return Array.from({ length: rows }, () => `${key} read ${reads}`);
    });
  return { pages, read, answered, reads: () => reads, hear: (h: boolean) => (hearing = h) };
}

test("kept pages: answered again until their owner's next change; another owner's change keeps them", async () => {
  const { pages, read, answered } = ownerPages();
  assert.deepEqual(await read('a', 'p1'), ['p1 read 1']);
  assert.deepEqual(await read('a', 'p1'), ['p1 read 1']);
  assert.deepEqual(await read(null, 'p1'), ['p1 read 2'], "open mode's owner is another owner");
  assert.deepEqual(await read('b', 'p1'), ['p1 read 3']);
  pages.changed('b');
  assert.deepEqual(await read('a', 'p1'), ['p1 read 1']);
  assert.deepEqual(await read(null, 'p1'), ['p1 read 2']);
  assert.deepEqual(await read('b', 'p1'), ['p1 read 4']);
  pages.changed(null);
  assert.deepEqual(await read(null, 'p1'), ['p1 read 5']);
  pages.changed(EVERY_OWNER);
  assert.deepEqual(await read('a', 'p1'), ['p1 read 6']);
  assert.deepEqual(await read('b', 'p1'), ['p1 read 7']);
  assert.deepEqual(answered, ['read', 'kept', 'read', 'read', 'kept', 'kept', 'read', 'read', 'read', 'read']);
});

test('kept pages: a read under way when its owner changed is not kept; nothing is kept or answered while changes are not heard', async () => {
  const { pages, read, hear } = ownerPages();
  let finish = () => {};
  const slow = pages.read('a', 'p', () => new Promise<string[]>((r) => (finish = () => r(['before the change']))));
  pages.changed('a'); // the change came while the read was under way: it may have read the row before it
  finish();
  assert.deepEqual(await slow, ['before the change'], 'answered to its own request');
  assert.deepEqual(await read('a', 'p'), ['p read 1'], 'not kept');
  hear(false); // the LISTEN connection is down: a change now would not be heard
  assert.deepEqual(await read('a', 'p'), ['p read 2']);
  assert.deepEqual(await read('a', 'q'), ['q read 3']);
  hear(true);
  assert.deepEqual(await read('a', 'q'), ['q read 4'], 'what was read while not hearing was not kept');
  assert.deepEqual(await read('a', 'q'), ['q read 4']);
  // a change of every owner (the LISTEN connection back) reaches a read under way too
  const under = pages.read('b', 'p', () => new Promise<string[]>((r) => (finish = () => r(['under way']))));
  pages.changed(EVERY_OWNER);
  finish();
  await under;
  assert.deepEqual(await read('b', 'p'), ['p read 5']);
});

test('kept pages: requests for a page being read share that read, unless their owner changed since it began', async () => {
  const { pages, hear } = ownerPages();
  const finish: (() => void)[] = [];
  const ask = () =>
    pages.read('a', 'p', () => {
      const n = finish.length + 1;
      return new Promise<string[]>((r) => finish.push(() => r([`read ${n}`])));
    });
  const [x, y] = [ask(), ask()];
  assert.equal(finish.length, 1, 'one read for both');
  pages.changed('a');
  const z = ask(); // after the change: the read under way may not see it
  assert.equal(finish.length, 2);
  hear(false);
  const w = ask(); // changes not heard now: its own read
  assert.equal(finish.length, 3);
  hear(true);
  finish.forEach((f) => f());
  assert.deepEqual(await Promise.all([x, y, z, w]), [['read 1'], ['read 1'], ['read 2'], ['read 3']]);
});

test("kept pages: an owner past its pages or bytes loses its own least recently answered, not another owner's", async () => {
  const { read, reads } = ownerPages({ pagesPerOwner: 2, bytesPerOwner: 550, bytes: 900, maxAgeMs: 60_000 });
  const misses = async (owner: string, ...keys: string[]) => {
    const before = reads();
    for (const k of keys) await read(owner, k);
    return reads() - before;
  };
  assert.equal(await misses('b', 'p1'), 1);
  assert.equal(await misses('a', 'p1', 'p2', 'p1', 'p3'), 3); // p1 answered after p2: p2 leaves for p3
  assert.equal(await misses('a', 'p1', 'p3'), 0);
  assert.equal(await misses('a', 'p2'), 1);
  assert.equal(await misses('a', 'p4', 'p5', 'p6', 'p7'), 4, 'one key asking for many pages');
  assert.equal(await misses('b', 'p1'), 0, "kept the other key's");
  await read('a', 'big', 4); // 410 bytes beside p6's and p7's 108 each: the older, p6, leaves
  assert.equal(await misses('a', 'p7', 'big'), 0);
  assert.equal(await misses('a', 'p6'), 1);
  const before = reads();
  await read('a', 'huge', 6); // more than an owner may keep: answered, not kept
  await read('a', 'huge', 6);
  assert.equal(reads(), before + 2);
  // past every owner's bytes (900): the least recently answered page of any owner leaves first
  assert.equal(await misses('b', 'p1'), 0);
  assert.equal(await misses('a', 'big', 'p6'), 0);
  await read('c', 'c1', 3); // a's 518, b's 108 and c's 308: b's p1, the least recently answered, leaves
  assert.equal((await misses('a', 'big', 'p6')) + (await misses('c', 'c1')), 0);
  assert.equal(await misses('b', 'p1'), 1);
});

test('kept pages: none is answered past its age', async (t) => {
  const { read, reads } = ownerPages({ pagesPerOwner: 10, bytesPerOwner: 10_000, bytes: 100_000, maxAgeMs: 1000 });
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  await read('a', 'p');
  t.mock.timers.tick(1000);
  await read('a', 'p');
  assert.equal(reads(), 1);
  t.mock.timers.tick(1);
  await read('a', 'p');
  assert.equal(reads(), 2, 'read anew past maxAgeMs');
});

test("queue estimates: from the snapshot's time for the work ahead it counted, and never before now", async (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  // the queue as read: one generation next in line, 10 images running ahead of it, 100 images a second
  const place = { generationId: 'g', model: 'm', position: 0, imagesAhead: 0 };
  const load = { model: 'm', workers: 1, runningImages: 10, imagesPerSecond: 100 };
  let reads = 0;
  const prisma = {
    $queryRaw: (sql: TemplateStringsArray) => {
      reads++;
      return Promise.resolve(sql.join('').includes('"imagesAhead"') ? [place] : [load]);
    },
  };
  const watch = new QueueWatch(prisma as unknown as PrismaClient, createGenerationPubSub());
  const g = { id: 'g', status: 'QUEUED', model: 'm', imageCount: 4, progress: 0 };
  const times = async () => {
    const e = await watch.estimate(g);
    return [e.estimatedStartAt?.getTime(), e.estimatedFinishAt?.getTime()];
  };
  assert.deepEqual(await times(), [1_000_100, 1_000_140]);
  t.mock.timers.tick(1500); // the same snapshot: the 10 images ahead are drawn by now, if the rate held
  assert.deepEqual(await times(), [1_001_500, 1_001_540]);
  assert.equal(reads, 2, 'one read of places and loads');
  // a running one: its remaining images from now
  assert.deepEqual(
    (await watch.estimate({ ...g, status: 'RUNNING', progress: 0.5 })).estimatedFinishAt?.getTime(),
    1_001_520,
  );
});
