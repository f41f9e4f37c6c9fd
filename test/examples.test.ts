/** The example client (examples/generate.ts) run as a user would, against a running service. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readPngText } from '../src/images/png.ts';
import { type Running, startServices } from '../src/services.ts';
import { tinyModelDir } from './support/model.ts';

let running: Running;

before(async () => {
  running = await startServices(
    { databaseUrl: null, dataDir: 'memory://', port: 0, host: '127.0.0.1', modelDir: await tinyModelDir(), backend: 'wasm', maxBatch: 8, maxJobs: 4, leaseSeconds: 10, workerId: 'example' },
    { api: true, worker: true, migrate: true },
    () => {},
  );
});

after(async () => {
  await running?.stop();
});

test('examples/generate.ts requests images, follows them live and saves the PNGs', async () => {
  const out = await mkdtemp(join(tmpdir(), 'ganvas-example-'));
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', 'examples/generate.ts', '--url', `http://127.0.0.1:${running.api!.port}`, '--caption', 'a yellow flower', '--count', '2', '--seed', '8', '--out', out], { cwd: join(__dirname, '..') });
  assert.match(stdout, /SUCCEEDED 100% \(2 images\)/);
  const files = (await readdir(out)).sort();
  assert.equal(files.length, 2);
  assert.deepEqual(readPngText(await readFile(join(out, files[0]))), { caption: 'a yellow flower', seed: '8', model: 'tiny', kind: 'TEXT_TO_IMAGE' });
});
