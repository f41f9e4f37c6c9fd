/**
 * What a generation's subscribers are sent (Postgres; the API, then a worker drawing one image a pass): a message only
 * when what it selects changed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from 'graphql-ws';
import { createApiKey } from '../src/auth/keys.ts';
import type { Config } from '../src/config.ts';
import { silentLogger } from '../src/ops/log.ts';
import { type Running, startServices } from '../src/services.ts';
import { testConfig } from './support/config.ts';
import { freshPostgres } from './support/db.ts';
import { gql, wsClient } from './support/graphql.ts';
import { tinyModelDir } from './support/model.ts';

let config: Config;
let api: Running;
let drop: () => Promise<void>;
let key = '';
let ws: Client;

before(async () => {
  const pgdb = await freshPostgres(__filename);
  drop = pgdb.drop;
  config = testConfig(await tinyModelDir(), { databaseUrl: pgdb.url, maxBatch: 1 });
  api = await startServices(config, { api: true, worker: false, migrate: true, auth: 'keys' }, silentLogger());
  key = (await createApiKey(api.db.prisma, 'watcher')).key;
  ws = wsClient(api.api!.url, key);
});

after(async () => {
  await ws?.dispose();
  await api?.stop();
  await drop?.();
});

test('a subscriber is sent a state only when what it selects changed: status alone, or progress', async () => {
  const id = (
    await gql(
      api.api!.url,
      'mutation { generateImages(input: { caption: "a white flower", count: 6, seed: 5 }) { id } }',
      {},
      key,
    )
  ).data!.generateImages.id as string;
  // both subscribed while it waits for a worker; then one draws its six images, one a pass
  const follow = (field: string) => {
    const got: unknown[] = [];
    const done = new Promise<unknown[]>((resolve, reject) =>
      ws.subscribe(
        { query: `subscription($id: ID!) { generationUpdated(id: $id) { ${field} } }`, variables: { id } },
        {
          next: (e) =>
            void got.push((e.data as { generationUpdated: Record<string, unknown> }).generationUpdated[field]),
          error: reject,
          complete: () => resolve(got),
        },
      ),
    );
    return { got, done };
  };
  const [statuses, progresses] = [follow('status'), follow('progress')];
  for (let i = 0; statuses.got.length === 0 || progresses.got.length === 0; i++) {
    assert.ok(i < 500, 'the first state of each');
    await new Promise((r) => setTimeout(r, 20));
  }
  const worker = await startServices(config, { api: false, worker: true, migrate: false }, silentLogger());
  try {
    // QUEUED, RUNNING (unless its passes all land before the API reads it), SUCCEEDED: each once, where without the
    // check a RUNNING came with each of the six passes
    const seen = (await statuses.done) as string[];
    assert.equal(seen[0], 'QUEUED');
    assert.equal(seen.at(-1), 'SUCCEEDED');
    assert.deepEqual(
      seen,
      seen.filter((s, i) => s !== seen[i - 1]),
      `each status once: ${seen.join(', ')}`,
    );
    const fractions = (await progresses.done) as number[];
    assert.equal(fractions[0], 0);
    assert.equal(fractions.at(-1), 1);
    assert.ok(
      fractions.every((p, i) => i === 0 || p > fractions[i - 1]),
      `progress rises with every message: ${fractions.join(', ')}`,
    );
  } finally {
    await worker.stop();
  }
});
