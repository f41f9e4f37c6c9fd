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
import { silentLogger } from '../src/ops/log.ts';
import { testConfig } from './support/config.ts';
import { tinyModelDir } from './support/model.ts';

let running: Running;

before(async () => {
  running = await startServices(
    testConfig(await tinyModelDir()),
    { api: true, worker: true, migrate: true, auth: 'open' },
    silentLogger(),
  );
});

after(async () => {
  await running?.stop();
});

test('examples/generate.ts requests images, follows them live and saves the PNGs', async () => {
  const out = await mkdtemp(join(tmpdir(), 'ganvas-example-'));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '-r',
      '@swc-node/register',
      'examples/generate.ts',
      '--url',
      `http://127.0.0.1:${running.api!.port}`,
      '--caption',
      'a yellow flower',
      '--count',
      '2',
      '--seed',
      '8',
      '--out',
      out,
    ],
    { cwd: join(__dirname, '..') },
  );
  assert.match(stdout, /SUCCEEDED 100% \(2 images\)/);
  const files = (await readdir(out)).sort();
  assert.equal(files.length, 2);
  assert.deepEqual(readPngText(await readFile(join(out, files[0]))), {
    caption: 'a yellow flower',
    seed: '8',
    model: 'tiny',
    kind: 'TEXT_TO_IMAGE',
  });
});
