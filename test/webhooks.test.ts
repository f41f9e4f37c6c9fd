/**
 * Webhooks on Postgres, with the API and a worker running and a local receiver: messages signed per
 * Standard Webhooks (checked with the standardwebhooks package), at least once through a receiver that is
 * down, slow, or answering 500 while the services restart; addresses checked at the mutation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { verifyWebhook } from '../examples/client.ts';
import { createApiKey, revokeApiKey, rotateWebhookSecret, setKeyLimits } from '../src/auth/keys.ts';
import type { Config } from '../src/config.ts';
import type { UserError } from '../src/errors.ts';
import { ModelCatalog } from '../src/generations/models.ts';
import { GenerationService, WEBHOOK_LOOKUPS_PER_KEY } from '../src/generations/service.ts';
import { silentLogger } from '../src/ops/log.ts';
import { type Running, startServices } from '../src/services.ts';
import { type ClaimedDelivery, holdForSending, messageBody } from '../src/webhooks/deliveries.ts';
import {
  candidateNames,
  isPrivateAddress,
  parseHosts,
  parseResolvConf,
  resolveTarget,
} from '../src/webhooks/target.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { codeOf, collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';

/** A message as it arrived (`at`), and when its request ended (`ended`: answered, or dropped by the sender). */
type Message = { id: string; headers: IncomingMessage['headers']; body: string; at: number; ended?: number };

/** A webhook receiver whose answer the test sets: a status, after a delay (and, holdBody, a body never ended). */
class Receiver {
  readonly messages: Message[] = [];
  answer: { status: number; delayMs: number; holdBody?: boolean } = { status: 204, delayMs: 0 };
  /** Requests still to answer 500, whatever `answer` says. */
  failures = 0;
  /** Requests open now, and the most at once. */
  open = 0;
  maxOpen = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private server: Server | null = null;
  port = 0;

  async listen(port = 0): Promise<void> {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const message: Message = { id: String(req.headers['webhook-id']), headers: req.headers, body, at: Date.now() };
        this.messages.push(message);
        this.maxOpen = Math.max(this.maxOpen, ++this.open);
        res.on('close', () => {
          message.ended = Date.now();
          this.open--;
        });
        const { status, delayMs, holdBody } = this.failures-- > 0 ? { status: 500, delayMs: 0 } : this.answer;
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (holdBody)
            res.writeHead(status).write('thanks, and '); // the rest never comes
          else res.writeHead(status).end();
        }, delayMs);
        this.timers.add(timer);
      });
    });
    // a port given back (a receiver that was down) may have been taken meanwhile: fail naming it, not wait for ever
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`the receiver cannot listen on port ${port}: ${err.message}`)));
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(null));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }
}

let running: Running;
let config: Config;
let drop: () => Promise<void>;
let key = '';
let keyId = '';
const receiver = new Receiver();

const start = async () => {
  running = await startServices(config, { api: true, worker: true, migrate: true, auth: 'keys' }, silentLogger());
};

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  config = testConfig(await tinyModelDir(), {
    databaseUrl: pgdb.url,
    webhooks: { allowPrivate: true, timeoutSeconds: 2, backoffSeconds: 1, retryForSeconds: 600, publicUrl: null },
  });
  await start();
  ({ id: keyId, key } = await createApiKey(running.db.prisma, 'hooks'));
  await receiver.listen();
});

after(async () => {
  await receiver.close();
  await running?.stop();
  await drop?.();
});

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const DELIVERIES = `query($id: ID!) { generation(id: $id) { status webhook { url events deliveries {
  id event status attempts lastStatusCode lastError deliveredAt } } } }`;

async function deliveries(id: string) {
  const res = await gql(running.api!.url, DELIVERIES, { id }, key);
  return res.data!.generation.webhook.deliveries as {
    id: string;
    event: string;
    status: string;
    attempts: number;
    lastStatusCode: number | null;
    lastError: string | null;
  }[];
}

async function generate(webhook: Record<string, unknown>, count = 1, as = key): Promise<string> {
  const res = await gql(
    running.api!.url,
    'mutation($input: GenerateImagesInput!) { generateImages(input: $input) { id } }',
    { input: { caption: 'a red flower', count, seed: 1, webhook } },
    as,
  );
  assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  return res.data!.generateImages.id as string;
}

const delivered = (id: string, events = 1) =>
  until(`${events} deliveries of ${id}`, async () => {
    const ds = await deliveries(id);
    return ds.length === events && ds.every((d) => d.status === 'DELIVERED') ? ds : undefined;
  });

test('messages for started, each image and completed, signed per Standard Webhooks, with absolute image URLs', async () => {
  receiver.answer = { status: 204, delayMs: 0 };
  const secret = (await gql(running.api!.url, '{ webhookSecret }', {}, key)).data!.webhookSecret as string;
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  const id = await generate({ url: receiver.url, events: ['STARTED', 'IMAGE', 'COMPLETED'] }, 2);
  const ds = await delivered(id, 4);
  assert.deepEqual(
    ds.map((d) => [d.event, d.attempts, d.lastStatusCode, d.lastError]),
    [
      ['STARTED', 1, 204, null],
      ['IMAGE', 1, 204, null],
      ['IMAGE', 1, 204, null],
      ['COMPLETED', 1, 204, null],
    ],
  );
  const mine = receiver.messages.filter((m) => ds.some((d) => d.id === m.id));
  assert.equal(mine.length, 4);
  const verifier = new Webhook(secret);
  const bodies = mine.map((m) => {
    const payload = verifier.verify(m.body, m.headers as Record<string, string>) as {
      type: string;
      data: { generation: { id: string; status: string; images: { url: string }[] }; image?: { index: number } };
    };
    assert.equal(m.headers['content-type'], 'application/json');
    return payload;
  });
  assert.deepEqual(
    bodies.map((b) => b.type),
    ['generation.started', 'generation.image', 'generation.image', 'generation.completed'],
  );
  assert.deepEqual(
    bodies.slice(1, 3).map((b) => b.data.image!.index),
    [0, 1],
  );
  const done = bodies[3].data.generation;
  assert.deepEqual(
    Object.keys(done).sort(),
    [
      ...['id', 'kind', 'status', 'captions', 'seed', 'endSeed', 'model', 'error', 'imageCount', 'progress'],
      'styleImageId',
      'idempotencyKey',
      ...['createdAt', 'startedAt', 'finishedAt', 'images', 'animationUrl'],
    ].sort(),
    "the GraphQL type's fields but the live ones",
  );
  assert.equal(done.id, id);
  assert.equal(done.status, 'SUCCEEDED');
  assert.equal(done.images.length, 2);
  assert.equal((done as unknown as { imageCount: number }).imageCount, 2);
  const png = await fetch(done.images[0].url);
  assert.equal(png.headers.get('content-type'), 'image/png');
  // the example client's helper agrees, and refuses a replay
  assert.equal(verifyWebhook(secret, mine[3].headers, mine[3].body).data.generation.status, 'SUCCEEDED');
  assert.throws(
    () => verifyWebhook(secret, { ...mine[3].headers, 'webhook-timestamp': '1000000000' }, mine[3].body),
    /too old/,
  );
  assert.throws(() => verifyWebhook(secret, mine[3].headers, `${mine[3].body} `), /does not match/);
  // a wrong secret or a changed body does not verify
  assert.throws(() =>
    new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(
      mine[0].body,
      mine[0].headers as Record<string, string>,
    ),
  );
  assert.throws(() =>
    verifier.verify(mine[0].body.replace('started', 'stopped'), mine[0].headers as Record<string, string>),
  );
});

test('a receiver that is down: retried with backoff until it is up, then delivered once', async () => {
  await receiver.close();
  receiver.answer = { status: 200, delayMs: 0 };
  const id = await generate({ url: receiver.url });
  // attempts counts claims: a third claimed means the first two have ended (one attempt at a time), both refused
  await until('two failed attempts', async () => ((await deliveries(id))[0]?.attempts ?? 0) >= 3 || undefined);
  const pending = (await deliveries(id))[0];
  assert.equal(pending.status, 'PENDING');
  assert.match(pending.lastError ?? '', /ECONNREFUSED/);
  await receiver.listen(receiver.port);
  const [d] = await delivered(id);
  assert.ok(d.attempts >= 3, `attempts ${d.attempts}`);
  assert.equal(receiver.messages.filter((m) => m.id === d.id).length, 1);
});

test("a page's webhook deliveries are read at each query, over WebSocket too, while the page itself is kept", async () => {
  await receiver.close();
  const id = await generate({ url: receiver.url });
  const PAGE =
    'query($ids: [ID!]) { generations(ids: $ids) { edges { node { status webhook { deliveries { attempts } } } } } }';
  const ws = wsClient(running.api!.url, key);
  const kept = async () =>
    (await running.metrics.pagesAnswered.get()).values.find((v) => v.labels.from === 'kept')?.value ?? 0;
  // the generation's row stops changing once it SUCCEEDED; its message is tried again meanwhile (WebhookDelivery)
  const attempts = async () => {
    const [r] = await collect(ws, PAGE, { ids: [id] });
    const { status, webhook } = r.data!.generations.edges[0].node;
    return status === 'SUCCEEDED' ? ((webhook.deliveries[0]?.attempts ?? 0) as number) : undefined;
  };
  try {
    const first = await until('SUCCEEDED', attempts);
    const keptBefore = await kept();
    await until('another attempt, read over WebSocket', async () => ((await attempts())! > first ? true : undefined));
    assert.ok((await kept()) > keptBefore, 'the page was answered from memory meanwhile');
  } finally {
    await ws.dispose();
    await receiver.listen(receiver.port);
  }
  await delivered(id); // not left to be retried during the tests after
});

test('a message whose generation is deleted while it is on its way is not counted as one to send again', async () => {
  const retries = async () =>
    (await running.metrics.webhookAttempts.get()).values.find((v) => v.labels.result === 'retry')?.value ?? 0;
  receiver.answer = { status: 500, delayMs: 1000 };
  try {
    const id = await generate({ url: receiver.url });
    const mine = () => receiver.messages.find((m) => m.body.includes(id));
    await until('its first message on its way', () => mine());
    const counted = await retries();
    const gone = await gql(running.api!.url, 'mutation($id: ID!) { deleteGeneration(id: $id) }', { id }, key);
    assert.equal(gone.data?.deleteGeneration, id);
    await until('the answer', () => mine()!.ended);
    await new Promise((r) => setTimeout(r, 500)); // the dispatcher records the failure
    assert.equal(await retries(), counted);
  } finally {
    receiver.answer = { status: 204, delayMs: 0 };
  }
});

test("one generation's messages go one at a time, in order: a later one waits while an earlier one is retried", async () => {
  receiver.answer = { status: 200, delayMs: 0 };
  receiver.failures = 2;
  const seen = receiver.messages.length;
  const id = await generate({ url: receiver.url, events: ['STARTED', 'COMPLETED'] });
  const ds = await delivered(id, 2);
  const types = receiver.messages
    .slice(seen)
    .filter((m) => ds.some((d) => d.id === m.id))
    .map((m) => (JSON.parse(m.body) as { type: string }).type);
  assert.deepEqual(types, ['generation.started', 'generation.started', 'generation.started', 'generation.completed']);
});

test('a message made while the one ahead of it ends goes next, whichever transaction commits first', async () => {
  // a generation with one message A, not due for an hour (no sender takes it); B is made while A is ended
  const [{ id }] = await running.db.query<{ id: string }>(
    `INSERT INTO "Generation" ("id", "kind", "status", "seed", "model", "imageCount", "webhookUrl", "webhookEvents")
     VALUES (gen_random_uuid(), 'TEXT_TO_IMAGE', 'RUNNING', 1, 'tiny', 1, $1, '{IMAGE}') RETURNING "id"::text AS "id"`,
    [receiver.url],
  );
  const message = async (c: pg.Client) => {
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO "WebhookDelivery" ("generationId", "event", "nextAttemptAt")
       VALUES ($1, 'IMAGE', now() + interval '1 hour') RETURNING "id"::text AS "id"`,
      [id],
    );
    return rows[0].id;
  };
  const state = (deliveryId: string) =>
    running.db
      .query<{ behind: boolean; due: boolean }>(
        'SELECT "behind", "dueAt" IS NOT NULL AS "due" FROM "WebhookDelivery" WHERE "id" = $1',
        [deliveryId],
      )
      .then((r) => r[0]);
  const ending = new pg.Client({ connectionString: config.databaseUrl! });
  const making = new pg.Client({ connectionString: config.databaseUrl! });
  await Promise.all([ending.connect(), making.connect()]);
  try {
    const end = (deliveryId: string) =>
      ending.query(`UPDATE "WebhookDelivery" SET "status" = 'DELIVERED' WHERE "id" = $1`, [deliveryId]);
    const a = await message(making);
    const b = await message(making);
    assert.deepEqual(
      [await state(a), await state(b)],
      [
        { behind: false, due: true },
        { behind: true, due: false },
      ],
    );

    await end(a);
    assert.deepEqual(await state(b), { behind: false, due: true }, 'let go when the one ahead ended');

    // C is made while B is ended: it waits for B's end to commit, and then is not behind it
    await ending.query('BEGIN');
    await end(b);
    await making.query('BEGIN');
    const c = message(making);
    await ending.query('COMMIT');
    const cId = await c;
    await making.query('COMMIT');
    assert.deepEqual(await state(cId), { behind: false, due: true }, 'made after the one ahead ended');

    // D is made first; C's end waits for it and then lets it go
    await making.query('BEGIN');
    const d = await message(making);
    await ending.query('BEGIN');
    const ended = end(cId);
    await making.query('COMMIT');
    await ended;
    await ending.query('COMMIT');
    assert.deepEqual(await state(d), { behind: false, due: true }, 'let go by the end of the one ahead');
  } finally {
    await Promise.all([ending.end(), making.end()]);
    await running.db.query('DELETE FROM "Generation" WHERE "id" = $1', [id]);
  }
});

test('a slow receiver: the attempt times out and is retried under the same webhook-id', async () => {
  receiver.answer = { status: 200, delayMs: 3000 };
  const id = await generate({ url: receiver.url });
  await until(
    'a timed-out attempt',
    async () => ((await deliveries(id))[0]?.lastError ?? '').includes('no answer') || undefined,
  );
  receiver.answer = { status: 200, delayMs: 0 };
  const [d] = await delivered(id);
  assert.ok(d.attempts >= 2);
  const seen = receiver.messages.filter((m) => m.id === d.id);
  assert.ok(seen.length >= 2 && seen.every((m) => m.body === seen[0].body), 'every attempt sends the same body');
});

test('a receiver that answers 2xx at once but never ends its body: delivered on the status, not retried', async () => {
  receiver.answer = { status: 200, delayMs: 0, holdBody: true };
  const id = await generate({ url: receiver.url });
  const [d] = await delivered(id);
  receiver.answer = { status: 204, delayMs: 0 };
  assert.equal(d.attempts, 1);
  assert.equal(d.lastStatusCode, 200);
  assert.equal(receiver.messages.filter((m) => m.id === d.id).length, 1);
});

test("a receiver that does not answer holds up only its own key's messages, at most 8 at once", async () => {
  const hanging = new Receiver();
  hanging.answer = { status: 200, delayMs: 60_000 };
  await hanging.listen();
  const other = (await createApiKey(running.db.prisma, 'hanging receiver')).key;
  // the other key's attempts held for 20 s, not 2 (the dispatcher reads its settings at each attempt): a loaded machine
  // takes longer than 2 s to start this key's generation, and the test is that no attempt of the other key had to end
  config.webhooks.timeoutSeconds = 20;
  try {
    receiver.answer = { status: 200, delayMs: 0 };
    for (let i = 0; i < 10; i++) await generate({ url: hanging.url, events: ['STARTED'] }, 1, other);
    await until('the hanging attempts', () => (hanging.messages.length >= 8 ? true : undefined));
    const id = await generate({ url: receiver.url, events: ['STARTED'] });
    const [d] = await delivered(id);
    const arrived = receiver.messages.find((m) => m.id === d.id)!;
    // this message went out while every one of the other key's attempts still waited (none had to end first)
    const held = hanging.messages.slice(0, 8);
    assert.ok(
      held.every((m) => m.ended === undefined || arrived.at < m.ended),
      'delivered while the other receiver hung',
    );
    assert.ok(hanging.maxOpen <= 8, `at most 8 of a key's messages on their way at once, saw ${hanging.maxOpen}`);
  } finally {
    await hanging.close(); // its connections closed: the attempts end at once
    config.webhooks.timeoutSeconds = 2;
  }
});

test('the API and the worker restarted while a message waits for its retry: it is delivered after', async () => {
  receiver.answer = { status: 500, delayMs: 0 };
  const id = await generate({ url: receiver.url });
  await until('a failed attempt', async () => (await deliveries(id))[0]?.lastStatusCode === 500 || undefined);
  await running.stop();
  receiver.answer = { status: 200, delayMs: 0 };
  await start();
  const [d] = await delivered(id);
  assert.equal(d.lastStatusCode, 200);
  assert.deepEqual(
    receiver.messages.filter((m) => m.id === d.id).length,
    d.attempts,
    'one request per attempt, all under one webhook-id',
  );
});

test('a message claimed when its key is revoked is not sent: not after its sender died, not by the one after', async () => {
  const other = await createApiKey(running.db.prisma, 'revoked hooks');
  const down = new Receiver();
  await down.listen();
  const port = down.port;
  await down.close(); // refused until the revocation
  try {
    const id = await generate({ url: down.url, events: ['COMPLETED'] }, 1, other.key);
    const row = () =>
      running.db
        .query<{ id: string; status: string; attempts: number; lastError: string | null }>(
          'SELECT "id"::text AS "id", "status"::text AS "status", "attempts", "lastError" FROM "WebhookDelivery" WHERE "generationId" = $1',
          [id],
        )
        .then((r) => r[0]);
    await until(
      'a refused attempt',
      async () => ((await row())?.lastError ?? '').includes('ECONNREFUSED') || undefined,
    );
    // a sender claims it (attempt n + 1) and dies holding the claim
    await running.db.query(
      `UPDATE "WebhookDelivery" SET "lockedUntil" = now() + interval '1 hour', "attempts" = "attempts" + 1 WHERE "id" = $1`,
      [(await row()).id],
    );
    const claimed = await row();
    assert.equal(await holdForSending(running.db.prisma, claimed, 40), 'held');
    assert.equal(await holdForSending(running.db.prisma, { ...claimed, attempts: claimed.attempts - 1 }, 40), 'lost');
    const lease = (sql: string) =>
      running.db.query(`UPDATE "WebhookDelivery" SET ${sql} WHERE "id" = $1`, [claimed.id]);
    await lease(`"lockedUntil" = now() - interval '1 second', "nextAttemptAt" = now() + interval '1 hour'`);
    assert.equal(await holdForSending(running.db.prisma, claimed, 40), 'lost', 'a lapsed claim is not renewed');
    await lease(`"lockedUntil" = now() + interval '1 hour'`);
    await revokeApiKey(running.db.prisma, other.id);
    assert.equal((await row()).status, 'PENDING', 'the revocation leaves a claimed message to its sender');
    assert.equal(await holdForSending(running.db.prisma, claimed, 40), 'revoked');
    // the claim runs out; another sender takes the message: it must not go out
    await down.listen(port);
    await lease(`"lockedUntil" = now() - interval '1 second', "nextAttemptAt" = now()`);
    const ended = await until('the message ended', async () => {
      const r = await row();
      return r.status === 'PENDING' ? undefined : r;
    });
    assert.equal(ended.status, 'FAILED');
    assert.match(ended.lastError ?? '', /revoked/);
    assert.equal(down.messages.length, 0, 'nothing reached the receiver after the revocation');
  } finally {
    await down.close();
  }
});

test('a body stored by another attempt meanwhile is the one sent: one webhook-id, one body', async () => {
  receiver.answer = { status: 200, delayMs: 0 };
  const id = await generate({ url: receiver.url, events: ['COMPLETED'] });
  const [d] = await delivered(id);
  await running.db.query(`UPDATE "WebhookDelivery" SET "body" = '{"stored":"first"}' WHERE "id" = $1`, [d.id]);
  // this attempt claimed it before the other stored its body (it read none)
  const [claimed] = await running.db.query<ClaimedDelivery>(
    `SELECT "id"::text AS "id", "generationId"::text AS "generationId", "event"::text AS "event",
            "imageId"::text AS "imageId", "attempts", NULL AS "body", "createdAt" FROM "WebhookDelivery" WHERE "id" = $1`,
    [d.id],
  );
  assert.equal(await messageBody(running.db.prisma, claimed, 'http://x'), '{"stored":"first"}');
});

test('after key:rotate-secret both secrets verify for a day', async () => {
  receiver.answer = { status: 200, delayMs: 0 };
  const old = (await gql(running.api!.url, '{ webhookSecret }', {}, key)).data!.webhookSecret as string;
  const fresh = (await rotateWebhookSecret(running.db.prisma, keyId))!;
  assert.equal((await gql(running.api!.url, '{ webhookSecret }', {}, key)).data!.webhookSecret, fresh);
  const [d] = await delivered(await generate({ url: receiver.url }));
  const m = receiver.messages.find((x) => x.id === d.id)!;
  assert.equal(String(m.headers['webhook-signature']).split(' ').length, 2);
  for (const secret of [old, fresh]) new Webhook(secret).verify(m.body, m.headers as Record<string, string>);
});

test('bad webhooks are BAD_USER_INPUT at the mutation and store nothing; private addresses only when allowed', async () => {
  const before = await running.db.prisma.generation.count();
  for (const [webhook, message] of [
    [{ url: 'ftp://example.com/x' }, /http or https/],
    [{ url: 'not a url' }, /absolute URL/],
    [{ url: 'http://user:pw@example.com/' }, /user name or password/],
    [{ url: receiver.url, events: [] }, /at least one event/],
    [{ url: `http://example.com/${'x'.repeat(2100)}` }, /longer than 2048/],
  ] as const) {
    const res = await gql(
      running.api!.url,
      'mutation($input: GenerateImagesInput!) { generateImages(input: $input) { id } }',
      { input: { caption: 'a red flower', webhook } },
      key,
    );
    assert.equal(codeOf(res), 'BAD_USER_INPUT', JSON.stringify(webhook));
    assert.match(res.errors![0].message, message);
  }
  // the service as an API without WEBHOOK_ALLOW_PRIVATE runs it
  const strict = new GenerationService(running.db, new ModelCatalog(running.db.prisma, 'tiny'));
  for (const url of [
    receiver.url,
    'http://localhost:8080/',
    'http://[::1]/',
    'http://169.254.169.254/latest/meta-data',
  ])
    await assert.rejects(
      strict.generateImages(keyId, { caption: 'a red flower', webhook: { url } }),
      (err: UserError) => {
        assert.equal(err.code, 'BAD_USER_INPUT');
        // without the address: the answer would map the server's network
        assert.equal(
          err.message,
          'webhook.url points to a private or loopback address; set WEBHOOK_ALLOW_PRIVATE=1 to allow them',
        );
        return true;
      },
    );
  assert.equal(await running.db.prisma.generation.count(), before);
});

test("a key over its limits gets RATE_LIMITED before its webhook's name is looked up", async () => {
  const { id, key: limited } = await createApiKey(running.db.prisma, 'limited hooks');
  await setKeyLimits(running.db.prisma, id, { rateLimitPerMinute: 1 });
  const ask = (webhook?: { url: string }) =>
    gql(
      running.api!.url,
      'mutation($input: GenerateImagesInput!) { generateImages(input: $input) { id } }',
      { input: { caption: 'a red flower', count: 1, webhook } },
      limited,
    );
  assert.ok((await ask()).data, 'its one request of the minute');
  // a name that would not resolve: looked up first, it would be BAD_USER_INPUT
  const res = await ask({ url: 'http://never-resolves.invalid/hook' });
  assert.equal(codeOf(res), 'RATE_LIMITED', JSON.stringify(res.errors));
});

test('a webhook host the DNS fails to look up is SERVICE_UNAVAILABLE (send again), one that does not exist BAD_USER_INPUT', async (t) => {
  const { key: hooks } = await createApiKey(running.db.prisma, 'dns trouble');
  const answer = (code: string) => {
    for (const method of ['resolve4', 'resolve6'] as const)
      t.mock.method(Resolver.prototype, method, async () => {
        throw Object.assign(new Error(code), { code });
      });
  };
  const ask = () =>
    gql(
      running.api!.url,
      'mutation($input: GenerateImagesInput!) { generateImages(input: $input) { id } }',
      { input: { caption: 'a red flower', count: 1, webhook: { url: 'https://receiver.example/hook' } } },
      hooks,
    );
  const before = await running.db.prisma.generation.count();
  for (const code of ['ESERVFAIL', 'ETIMEOUT', 'ECONNREFUSED']) {
    answer(code);
    const res = await ask();
    assert.equal(codeOf(res), 'SERVICE_UNAVAILABLE', code);
    assert.match(
      res.errors![0].message,
      /receiver\.example (could not be looked up|did not resolve within 5 s) \(DNS\)/,
    );
    assert.equal((res.errors![0].extensions as { retryAfterSeconds: number }).retryAfterSeconds, 5);
  }
  for (const code of ['ENOTFOUND', 'ENODATA']) {
    answer(code);
    const res = await ask();
    assert.equal(codeOf(res), 'BAD_USER_INPUT', code);
    assert.match(res.errors![0].message, /host receiver\.example does not resolve/);
  }
  assert.equal(await running.db.prisma.generation.count(), before, 'nothing stored');
});

test("a key's webhook host names looked up at once are bounded: more at the same time are RATE_LIMITED", async (t) => {
  const { key: many } = await createApiKey(running.db.prisma, 'many lookups');
  // a name server that answers nothing until every request has been answered or is being looked up, then "no such
  // name" (nothing is admitted, nothing counted)
  let answerLookups!: () => void;
  const lookupsAnswered = new Promise<void>((resolve) => (answerLookups = resolve));
  for (const method of ['resolve4', 'resolve6'] as const)
    t.mock.method(Resolver.prototype, method, async () => {
      await lookupsAnswered;
      throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    });
  const ask = (i: number) =>
    gql(
      running.api!.url,
      'mutation($input: GenerateImagesInput!) { generateImages(input: $input) { id } }',
      { input: { caption: 'a red flower', webhook: { url: `https://slow-${i}.example/hook` } } },
      many,
    );
  let early = 0;
  const asked = Array.from({ length: WEBHOOK_LOOKUPS_PER_KEY + 3 }, (_, i) => ask(i).finally(() => early++));
  try {
    await until('the requests beyond the bound answered', () => early >= 3 || undefined);
  } finally {
    answerLookups(); // a failure above ends the test, not its lookups' wait
  }
  const answers = await Promise.all(asked);
  const codes = answers.map((a) => codeOf(a));
  assert.equal(codes.filter((c) => c === 'BAD_USER_INPUT').length, WEBHOOK_LOOKUPS_PER_KEY, codes.join());
  const refused = answers.filter((a) => codeOf(a) === 'RATE_LIMITED');
  assert.equal(refused.length, 3, codes.join());
  assert.match(refused[0].errors![0].message, /being looked up now/);
  assert.equal(codeOf(await ask(99)), 'BAD_USER_INPUT', 'one at a time is looked up');
});

test('a key with too many webhook messages undelivered is RATE_LIMITED for requests with a webhook, not without', async () => {
  const { id } = await createApiKey(running.db.prisma, 'backlog');
  const service = new GenerationService(running.db, new ModelCatalog(running.db.prisma, 'tiny'), {
    allowPrivateWebhooks: true,
    maxUndeliveredWebhooks: 3,
  });
  const g = await service.generateImages(id, { caption: 'a red flower' });
  // three messages waiting (a receiver that was down): due tomorrow, so this file's dispatcher leaves them
  await running.db.query(
    `INSERT INTO "WebhookDelivery" ("generationId", "event", "nextAttemptAt")
     SELECT $1::uuid, 'COMPLETED', now() + interval '1 day' FROM generate_series(1, 3)`,
    [g.id],
  );
  await assert.rejects(
    service.generateImages(id, { caption: 'a red flower', webhook: { url: receiver.url } }),
    (err: UserError) => {
      assert.equal(err.code, 'RATE_LIMITED');
      assert.match(err.message, /^3 webhook messages of this key are not delivered yet/);
      return true;
    },
  );
  assert.ok(await service.generateImages(id, { caption: 'a red flower' }), 'without a webhook');
  // another key is not held back by this one's backlog
  const other = await createApiKey(running.db.prisma, 'no backlog');
  assert.ok(await service.generateImages(other.id, { caption: 'a red flower', webhook: { url: receiver.url } }));
});

test('private, loopback, link-local and reserved addresses are refused; public ones are not', () => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0'])
    assert.ok(isPrivateAddress(a), a);
  for (const a of [
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:a00:1',
    '64:ff9b::a00:1',
    '64:ff9b:1::a9fe:a9fe', // local-use NAT64 of 169.254.169.254
    '::ffff:0:a9fe:a9fe', // IPv4-translated 169.254.169.254
    'fec0::1', // site-local
  ])
    assert.ok(isPrivateAddress(a), a);
  for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:808:808']) assert.ok(!isPrivateAddress(a), a);
});

test('host names resolve by DNS queries (c-ares, no pool thread): A and AAAA answers, none, localhost', async (t) => {
  const answer = (v4: string[] | string, v6: string[] | string) => {
    t.mock.method(Resolver.prototype, 'resolve4', async () => {
      if (typeof v4 === 'string') throw Object.assign(new Error(v4), { code: v4 });
      return v4;
    });
    t.mock.method(Resolver.prototype, 'resolve6', async () => {
      if (typeof v6 === 'string') throw Object.assign(new Error(v6), { code: v6 });
      return v6;
    });
  };
  answer(['93.184.215.14'], 'ENODATA');
  assert.deepEqual((await resolveTarget('https://a.example/hook', false)).addresses, [
    { address: '93.184.215.14', family: 4 },
  ]);
  answer(['93.184.215.14'], ['2606:2800:21f:cb07:6820:80da:af6b:8b2c']);
  assert.equal((await resolveTarget('https://a.example/hook', false)).addresses.length, 2);
  answer(['93.184.215.14'], ['fd00::1']); // one private address is enough to refuse
  await assert.rejects(resolveTarget('https://a.example/hook', false), /private or loopback/);
  answer('ENOTFOUND', 'ENOTFOUND');
  await assert.rejects(resolveTarget('https://a.example/hook', false), /host a\.example does not resolve/);
  answer('ETIMEOUT', 'ENOTFOUND');
  await assert.rejects(resolveTarget('https://a.example/hook', false), /did not resolve within 5 s/);
  answer('ENOTFOUND', 'ENOTFOUND'); // localhost is not asked of DNS (/etc/hosts, or loopback without it)
  for (const url of ['http://localhost:8080/', 'http://LOCALHOST.:8080/', 'http://app.localhost/'])
    assert.ok(
      (await resolveTarget(url, true)).addresses.every((a) => ['127.0.0.1', '::1'].includes(a.address)),
      url,
    );
});

test("host names are tried as getaddrinfo tries them: /etc/hosts, then resolv.conf's search list and ndots", () => {
  const hosts = parseHosts(
    '127.0.0.1 localhost\n::1 localhost ip6-localhost # loopback\n# 10.0.0.9 commented\n172.17.0.1 Host.Docker.Internal\n',
  );
  assert.deepEqual(hosts.get('localhost'), [
    { address: '127.0.0.1', family: 4 },
    { address: '::1', family: 6 },
  ]);
  assert.deepEqual(hosts.get('host.docker.internal'), [{ address: '172.17.0.1', family: 4 }]);
  assert.equal(hosts.get('commented'), undefined);
  const k8s = parseResolvConf(
    'nameserver 10.96.0.10\nsearch ns.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2\n',
  );
  assert.deepEqual(k8s, { search: ['ns.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 });
  assert.deepEqual(candidateNames('receiver', k8s), [
    'receiver.ns.svc.cluster.local',
    'receiver.svc.cluster.local',
    'receiver.cluster.local',
    'receiver',
  ]);
  assert.deepEqual(candidateNames('hooks.example.com.', k8s), ['hooks.example.com']);
  const plain = parseResolvConf('nameserver 1.1.1.1\n');
  assert.deepEqual(candidateNames('hooks.example.com', plain), ['hooks.example.com']);
  assert.deepEqual(candidateNames('hooks.example.com', { search: ['corp'], ndots: 1 }), [
    'hooks.example.com',
    'hooks.example.com.corp',
  ]);
});
