/**
 * What a generation's subscribers are sent (Postgres, API and worker in one process, one image a pass): a message
 * only when what it selects changed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from 'graphql-ws';
import { createApiKey } from '../src/auth/keys.ts';
import { silentLogger } from '../src/ops/log.ts';
import { type Running, startServices } from '../src/services.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { collect, gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';

let running: Running;
let drop: () => Promise<void>;
let key = '';
let ws: Client;

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  const config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url, maxBatch: 1 });
  running = await startServices(config, { api: true, worker: true, migrate: true, auth: 'keys' }, silentLogger());
  key = (await createApiKey(running.db.prisma, 'watcher')).key;
  ws = wsClient(running.api!.url, key);
});

after(async () => {
  await ws?.dispose();
  await running?.stop();
  await drop?.();
});

test('a subscriber is sent a state only when what it selects changed: status alone, or progress', async () => {
  const id = (
    await gql(
      running.api!.url,
      'mutation { generateImages(input: { caption: "a white flower", count: 6, seed: 5 }) { id } }',
      {},
      key,
    )
  ).data!.generateImages.id as string;
  // subscribed at once, both: the generation is QUEUED or just started, and has six passes of one image to go
  const [statuses, progresses] = await Promise.all(
    ['status', 'progress'].map((field) =>
      collect(ws, `subscription($id: ID!) { generationUpdated(id: $id) { ${field} } }`, { id }),
    ),
  );
  const seen = statuses.map((e) => e.data!.generationUpdated.status as string);
  assert.equal(seen.at(-1), 'SUCCEEDED');
  assert.deepEqual(
    seen,
    seen.filter((s, i) => s !== seen[i - 1]),
    `each status once: ${seen.join(', ')}`,
  );
  const fractions = progresses.map((e) => e.data!.generationUpdated.progress as number);
  assert.equal(fractions.at(-1), 1);
  assert.ok(
    fractions.every((p, i) => i === 0 || p > fractions[i - 1]),
    `progress rises with every message: ${fractions.join(', ')}`,
  );
});
