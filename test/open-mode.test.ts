/** Open mode (no keys, localhost) answers only this machine's pages: Host and Origin are checked. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import WebSocket from 'ws';
import { isLocalRequest } from '../src/api/open-mode.ts';
import { type Running, startConfig, startServices } from '../src/services.ts';
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { tinyModelDir } from './support/model.ts';

let running: Running;
let port = 0;

before(async () => {
  running = await startServices(
    testConfig(await tinyModelDir()),
    { api: true, worker: false, migrate: true, auth: 'open' },
    silentLogger(),
  );
  port = running.api!.port;
});

after(async () => {
  await running?.stop();
});

/** The status of a GraphQL request with `headers`, and the code of its first error. */
function status(headers: Record<string, string>): Promise<[number, string | undefined]> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ query: '{ models { name } }' });
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve([res.statusCode!, JSON.parse(Buffer.concat(chunks).toString()).errors?.[0]?.extensions?.code]),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function wsStatus(origin?: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws', origin ? { origin } : {});
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => resolve(`refused ${res.statusCode}`));
    ws.on('error', () => resolve('error'));
  });
}

test('HTTP: a local Host (and Origin) is served; a rebound name or a foreign page is 403 (FORBIDDEN)', async () => {
  assert.deepEqual(await status({ host: `127.0.0.1:${port}` }), [200, undefined]);
  assert.deepEqual(await status({ host: `localhost:${port}`, origin: `http://localhost:${port}` }), [200, undefined]);
  assert.deepEqual(await status({ host: `attacker.example:${port}` }), [403, 'FORBIDDEN']);
  assert.deepEqual(await status({ host: `127.0.0.1:${port}`, origin: 'https://attacker.example' }), [403, 'FORBIDDEN']);
});

test('WebSocket: a foreign page cannot open the socket (403, as over HTTP)', async () => {
  assert.equal(await wsStatus(), 'open');
  assert.equal(await wsStatus(`http://127.0.0.1:${port}`), 'open');
  assert.equal(await wsStatus('https://attacker.example'), 'refused 403'); // as over HTTP: not "send a key"
});

test('what counts as local', () => {
  const local = (host: string, origin?: string) => isLocalRequest({ headers: { host, ...(origin ? { origin } : {}) } });
  assert.ok(local('localhost') && local('127.0.0.1:4000') && local('[::1]:4000', 'http://[::1]:4000'));
  assert.ok(local('127.0.0.2:4000', 'http://127.0.0.2:4000')); // HOST=127.0.0.2 serves open mode too
  assert.ok(
    !local('127.0.0.1.attacker.example') &&
      !local('') &&
      !local('localhost', 'null') &&
      !local('localhost:4000', 'http://localhost.attacker.example') &&
      !local('127.0.0.1.nip.io') &&
      !local('128.0.0.1'),
  );
});

test('npm start lets webhooks reach private addresses on localhost only (unless told)', () => {
  const allows = (env: NodeJS.ProcessEnv) => startConfig(env).webhooks.allowPrivate;
  assert.equal(allows({}), true);
  assert.equal(allows({ HOST: '127.0.0.1' }), true);
  assert.equal(allows({ HOST: '0.0.0.0' }), false);
  assert.equal(allows({ HOST: '0.0.0.0', WEBHOOK_ALLOW_PRIVATE: '1' }), true);
  assert.equal(allows({ WEBHOOK_ALLOW_PRIVATE: '0' }), false);
});

test('the studio page is asked for again on each visit (a release names new assets); its hashed assets are kept', async () => {
  const page = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  const asset = /\/assets\/[^"]+\.js/.exec(await page.text())![0];
  const got = await fetch(`http://127.0.0.1:${port}${asset}`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('cache-control'), 'public, max-age=31536000, immutable');
});
