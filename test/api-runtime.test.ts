/**
 * The API process runs no model: it must not load TensorFlow.js (its wasm backend alone is megabytes of
 * memory and most of a second to start). Checked on a real `npm run api` process, after it listens. One that cannot
 * listen says why and ends.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
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

test('SIGTERM to `npm run api` (a process manager stopping it) reaches the API, which stops: no orphan left serving', async () => {
  const npm = spawn('npm', ['run', 'api'], {
    cwd: join(__dirname, '..'),
    env: { ...process.env, ...group.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));
  try {
    for (let i = 0; !/GraphQL API at/.test(out); i++) {
      assert.ok(i < 600, `the API did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = /GraphQL API at (http:\S+)/.exec(out)![1].replace('localhost', '127.0.0.1');
    npm.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.match(out, /SIGTERM: stopping/);
    await assert.rejects(fetch(url.replace('/graphql', '/healthz')), 'nothing serves its port any more');
  } finally {
    npm.kill('SIGKILL');
  }
});
