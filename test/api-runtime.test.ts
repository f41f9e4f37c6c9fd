/**
 * The API process runs no model: it must not load TensorFlow.js (its wasm backend alone is megabytes of
 * memory and most of a second to start). Checked on a real `npm run api` process, after it listens. One that cannot
 * listen says why and ends.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { migratedPostgres } from './support/db.ts';
import { tinyModelDir } from './support/model.ts';
import { ProcessGroup, startProcess } from './support/processes.ts';

let drop: () => Promise<void>;
let group: ProcessGroup;

before(async () => {
  const pgdb = await migratedPostgres(__filename);
  drop = pgdb.drop;
  group = new ProcessGroup({ DATABASE_URL: pgdb.url, MODEL_DIR: await tinyModelDir(), PORT: '0', HOST: '127.0.0.1' });
});

after(async () => {
  await group.killAll();
  await drop();
});

test('npm run api serves without loading TensorFlow.js or any model code', async () => {
  const { proc } = await group.api({}, ['-r', './test/support/report-modules.ts']);
  proc.child.kill('SIGUSR2');
  const report = JSON.parse((await proc.waitFor(/^(\{"modules".*)\n/m))[1]) as { modules: string[]; rss: number };
  assert.ok(
    report.modules.some((m) => m.includes('/src/api/server.ts')),
    'the report comes from the API',
  );
  assert.deepEqual(
    report.modules.filter((m) => m.includes('@tensorflow')),
    [],
  );
  assert.deepEqual(
    report.modules.filter(
      (m) =>
        /\/src\/(model|train|eval)\//.test(m) && !/(backends|checkpoint-meta|config|interpolation|random)\.ts$/.test(m),
    ),
    [],
  );
});

test('npm run api on a port already taken says so in one line and exits 1 (it used to wait for ever)', async () => {
  const { url } = await group.api();
  const taken = startProcess('bin/api.ts', { ...group.env, PORT: new URL(url).port });
  group.procs.push(taken);
  const code = await new Promise<number | null>((resolve) => taken.child.once('exit', resolve));
  assert.equal(code, 1, taken.output());
  assert.match(taken.output(), /^error: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+$/m);
  assert.doesNotMatch(taken.output(), /Internal error emitted|\n +at /);
});
