/**
 * What one WebSocket client may hold (keys mode): the time to authenticate, the message size, sockets
 * per key, operations per socket, and a revoked key's sockets closing within seconds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createApiKey, revokeApiKey } from '../src/auth/keys.ts';
import { DEFAULT_WS_LIMITS } from '../src/config.ts';
import { EventEmitter } from 'node:events';
import { SocketsByKey } from '../src/api/sockets.ts';
import { type Running, startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { gql } from './support/graphql.ts';
import { GanvasClient, type GanvasError } from '../examples/client.ts';
import { tinyModelDir } from './support/model.ts';

const limits = {
  ...DEFAULT_WS_LIMITS,
  maxPayloadBytes: 16 * 1024,
  initTimeoutMs: 1000,
  subscriptionsPerConnection: 2,
  connectionsPerKey: 2,
  recheckMs: 300,
};
let running: Running;
let url = '';

before(async () => {
  running = await startServices(
    testConfig(await tinyModelDir(), { ws: limits }),
    { api: true, worker: false, migrate: true, auth: 'keys' },
    silentLogger(),
  );
  url = running.api!.url;
});

after(async () => {
  await running?.stop();
});

/** A raw graphql-transport-ws socket; `init` sends connection_init with the key and waits for the ack. */
async function socket(
  key?: string,
  init = true,
  options: WebSocket.ClientOptions = {},
  to = url,
): Promise<{ ws: WebSocket; closed: Promise<number>; reason: Promise<string>; messages: Record<string, unknown>[] }> {
  const ws = new WebSocket(to.replace(/^http/, 'ws'), 'graphql-transport-ws', options);
  const messages: Record<string, unknown>[] = [];
  const closing = new Promise<[number, string]>((resolve) =>
    ws.on('close', (code, why) => resolve([code, String(why)])),
  );
  const [closed, reason] = [closing.then(([code]) => code), closing.then(([, why]) => why)];
  ws.on('message', (m) => messages.push(JSON.parse(String(m))));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  if (init) {
    ws.send(JSON.stringify({ type: 'connection_init', payload: key ? { authorization: `Bearer ${key}` } : {} }));
    await Promise.race([until(() => messages.some((m) => m.type === 'connection_ack')), closed]);
  }
  return { ws, closed, reason, messages };
}

async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const start = Date.now(); !done();) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a socket that does not authenticate in time is closed (4408)', async () => {
  const s = await socket(undefined, false);
  assert.equal(await s.closed, 4408);
});

test('a client of another protocol is told why (4406): the older one (subprotocol graphql-ws), none, an unknown one', async () => {
  for (const protocols of [['graphql-ws'], [], ['graphql-ws', 'other'], ['chat']]) {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols);
    const [code, why] = await new Promise<[number, string]>((resolve, reject) => {
      ws.on('close', (c, w) => resolve([c, String(w)]));
      ws.on('error', reject); // the handshake dropped by the client: no subprotocol came back
    });
    assert.deepEqual([code, why], [4406, 'Subprotocol not acceptable'], `asked for ${protocols.join(', ')}`);
  }
  // a client that offers the protocol among others gets it
  const s = await socket(undefined, false, {}, url);
  assert.equal(s.ws.protocol, 'graphql-transport-ws');
  s.ws.close();
});

test('a message over the size limit closes the socket, before authentication too (1009)', async () => {
  const s = await socket(undefined, false);
  s.ws.send(JSON.stringify({ type: 'connection_init', payload: { junk: 'x'.repeat(limits.maxPayloadBytes) } }));
  assert.equal(await s.closed, 1009);
});

test('a socket without a valid key is closed 4401 with why, which graphql-ws clients do not retry', async () => {
  for (const [key, why] of [
    [undefined, 'UNAUTHENTICATED: send an API key'],
    ['gv_not-a-key', 'UNAUTHENTICATED: the API key is not valid'],
  ]) {
    const s = await socket(key);
    assert.equal(await s.closed, 4401);
    assert.match(await s.reason, new RegExp(`^${why}`));
    assert.ok(!s.messages.some((m) => m.type === 'connection_ack'));
  }
});

test("the example client reports a refused socket as its code, not after graphql-ws's retries", async () => {
  const client = new GanvasClient(url.replace(/\/graphql$/, ''), 'gv_not-a-key');
  const started = Date.now();
  await assert.rejects(client.follow('00000000-0000-4000-8000-000000000000'), (e: GanvasError) => {
    assert.equal(e.code, 'UNAUTHENTICATED');
    return true;
  });
  assert.ok(Date.now() - started < 2000, 'not retried');
  // an answer that is not GraphQL's JSON (here express's 404 page) is its HTTP status
  const lost = new GanvasClient(url.replace(/\/graphql$/, '/nowhere'));
  await assert.rejects(lost.request('{ workers }'), (e: GanvasError) => e.code === '404');
  await Promise.all([client.close(), lost.close()]);
});

test('a key holds at most its sockets; a socket at most its operations', async () => {
  const { key } = await createApiKey(running.db.prisma, 'ws limits');
  const [a, b] = [await socket(key), await socket(key)];
  const third = await socket(key);
  assert.equal(await third.closed, 4403);
  assert.equal(await third.reason, 'RATE_LIMITED: an API key holds at most 2 sockets at once');
  const g = (await gql(url, 'mutation { generateImages(input: { caption: "a flower" }) { id } }', {}, key)).data!
    .generateImages;
  // the example client tries the key's socket limit again a few times (about ten seconds), then says why
  const full = new GanvasClient(url.replace(/\/graphql$/, ''), key);
  const started = Date.now();
  await assert.rejects(full.follow(g.id), (e: GanvasError) => e.code === 'RATE_LIMITED');
  assert.ok(Date.now() - started < 30_000, 'not retried for the whole reconnect window');
  await full.close();
  for (const id of ['1', '2', '3'])
    a.ws.send(
      JSON.stringify({
        id,
        type: 'subscribe',
        payload: { query: 'subscription($id: ID!) { generationUpdated(id: $id) { status } }', variables: { id: g.id } },
      }),
    );
  await until(() => a.messages.some((m) => m.id === '3'));
  await until(() => a.messages.some((m) => m.id === '1') && a.messages.some((m) => m.id === '2'));
  assert.deepEqual(
    ['1', '2'].map((id) => a.messages.find((m) => m.id === id)!.type),
    ['next', 'next'],
  ); // the first two run
  const refused = a.messages.find((m) => m.id === '3') as {
    type: string;
    payload: { extensions: { code: string; retryAfterSeconds: number } }[];
  };
  assert.equal(refused.type, 'error');
  assert.deepEqual(refused.payload[0].extensions, { code: 'RATE_LIMITED', retryAfterSeconds: 1 });
  a.ws.close();
  await a.closed;
  let again = await socket(key); // a closed socket frees its place (once the server has seen it close)
  for (let i = 0; i < 20 && !again.messages.some((m) => m.type === 'connection_ack'); i++) again = await socket(key);
  assert.ok(again.messages.some((m) => m.type === 'connection_ack'));
  [b, again].forEach((s) => s.ws.close());
});

test("a socket that stops answering pings is dropped and frees its key's place; one that answers stays", async () => {
  // an API of its own that pings every half second (the others' default, 12 s, would make this test slow)
  const pingMs = 500;
  const pinging = await startServices(
    testConfig(await tinyModelDir(), { ws: { ...limits, pingMs } }),
    { api: true, worker: false, migrate: true, auth: 'keys' },
    silentLogger(),
  );
  const at = pinging.api!.url;
  try {
    const { key } = await createApiKey(pinging.db.prisma, 'ws pings');
    const started = Date.now();
    const [gone, alive] = [await socket(key, true, { autoPong: false }, at), await socket(key, true, {}, at)];
    const within = new Promise<string>((r) => setTimeout(() => r('still open'), 10 * pingMs).unref());
    assert.equal(await Promise.race([gone.closed, within]), 1006); // terminated, no close frame
    // pinged at the first tick after it connected, dropped a tick later
    assert.ok(Date.now() - started >= pingMs, `dropped after ${Date.now() - started} ms, before it was pinged`);
    const again = await socket(key, true, {}, at); // the key's second place is free again
    assert.ok(again.messages.some((m) => m.type === 'connection_ack'));
    await new Promise((r) => setTimeout(r, 4 * pingMs)); // pinged and answered several times
    for (const s of [alive, again]) assert.equal(s.ws.readyState, WebSocket.OPEN);
    alive.ws.close();
    again.ws.close();
  } finally {
    await pinging.stop();
  }
});

test("a revoked key's open sockets close (4401), also when it was revoked in SQL (the periodic recheck)", async () => {
  const { id, key } = await createApiKey(running.db.prisma, 'to revoke');
  const s = await socket(key);
  assert.ok(s.messages.some((m) => m.type === 'connection_ack'));
  await revokeApiKey(running.db.prisma, id);
  assert.equal(await s.closed, 4401);
  const other = await createApiKey(running.db.prisma, 'revoked in SQL');
  const t = await socket(other.key);
  await running.db.query('UPDATE "ApiKey" SET "revokedAt" = now() WHERE "id" = $1', [other.id]);
  assert.equal(await t.closed, 4401);
});

test('the example client: an unreachable server is NETWORK; a follow stops at its signal or when its callback throws, the client goes on', async () => {
  const unreachable = new GanvasClient('http://127.0.0.1:9');
  await assert.rejects(unreachable.request('{ workers }'), (e: GanvasError) => e.code === 'NETWORK');
  await unreachable.close();
  const { key } = await createApiKey(running.db.prisma, 'example-follow');
  const client = new GanvasClient(url.replace(/\/graphql$/, ''), key);
  try {
    const g = await client.generateImages({ caption: 'a flower', count: 1 }); // stays QUEUED: no worker here
    const boom = new Error('my callback failed');
    await assert.rejects(
      client.follow(g.id, () => {
        throw boom;
      }),
      (e) => e === boom,
    );
    const controller = new AbortController();
    let seen = 0;
    const followed = client.follow(
      g.id,
      () => {
        seen++;
        controller.abort(new Error('enough'));
      },
      controller.signal,
    );
    await assert.rejects(followed, /enough/);
    assert.equal(seen, 1, 'a follow after one whose callback threw gets its updates');
  } finally {
    await client.close();
  }
});

test('revocation sweeps: one read for all keys, one sweep at a time (one asked for meanwhile runs once after)', async () => {
  const sockets = new SocketsByKey(5);
  const closed: string[] = [];
  for (const key of ['k1', 'k2', 'k3'])
    sockets.add(key, Object.assign(new EventEmitter(), { close: () => closed.push(key) }) as unknown as WebSocket);
  const reads: string[][] = [];
  let inFlight = 0;
  let most = 0;
  let revoked = new Set(['k2']);
  const valid = async (keys: string[]) => {
    reads.push(keys);
    const gone = revoked; // as the database reads it now
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 50)); // a slow database
    inFlight--;
    return new Set(keys.filter((k) => !gone.has(k)));
  };
  const first = sockets.closeRevoked(valid);
  await new Promise((r) => setTimeout(r, 10)); // its read is under way
  revoked = new Set(['k2', 'k3']); // revoked during the first sweep: the next one sees it
  await Promise.all([first, sockets.closeRevoked(valid), sockets.closeRevoked(valid)]);
  assert.equal(most, 1);
  assert.deepEqual(reads, [
    ['k1', 'k2', 'k3'],
    ['k1', 'k3'],
  ]);
  assert.deepEqual(closed, ['k2', 'k3']);
});
