/**
 * The example command line (examples/cli.ts, on examples/client.ts) run as a user would, against a running service,
 * and the client's retry of a creating request whose answer was lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GanvasClient, type GanvasError } from '../examples/client.ts';
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

/** The example CLI's output (stdout and stderr) for `args`; rejects where it exits non-zero. */
const run = (...args: string[]) =>
  promisify(execFile)(
    process.execPath,
    // the url with a trailing slash, as one is often written: the client's paths still work
    ['-r', '@swc-node/register', 'examples/cli.ts', ...args, '--url', `http://127.0.0.1:${running.api!.port}/`],
    { cwd: join(__dirname, '..') },
  );
const cli = async (...args: string[]) => (await run(...args)).stdout;

test('examples/cli.ts generate requests images, follows them live and saves the PNGs', async () => {
  const out = await mkdtemp(join(tmpdir(), 'ganvas-example-'));
  const stdout = await cli('generate', '--caption', 'a yellow flower', '--count', '2', '--seed', '8', '--out', out);
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

test('examples/cli.ts: every other operation, one command each', async () => {
  const out = await mkdtemp(join(tmpdir(), 'ganvas-example-'));
  const id = (stdout: string) => /generation (\S+):/.exec(stdout)![1];
  const first = id(await cli('generate', '--caption', 'a white flower', '--count', '1', '--out', out));
  const imageId = (JSON.parse(await cli('show', '--id', first)) as { images: { id: string }[] }).images[0].id;
  const interpolated = await cli(
    'interpolate',
    '--from',
    'a red flower',
    '--to',
    'a blue flower',
    '--steps',
    '3',
    '--out',
    out,
  );
  assert.match(interpolated, /SUCCEEDED 100% \(3 images\)/);
  assert.match(interpolated, /-1\.png \(seed \d+, mix 0\.5\)\n/);
  assert.match(interpolated, /-animation\.png \(the frames animated/);
  assert.match(
    await cli('variations', '--caption', 'a pink flower', '--steps', '2', '--out', out),
    /SUCCEEDED 100% \(2 images\)/,
  );
  assert.match(
    await cli('style', '--image-id', imageId, '--captions', 'a blue flower|a red flower', '--out', out),
    /SUCCEEDED 100% \(2 images\)/,
  );
  const png = join(
    out,
    (await readdir(out)).find((f) => !f.includes('animation'))!,
  );
  assert.match(
    await cli('style', '--image', png, '--captions', 'a yellow flower', '--out', out),
    /SUCCEEDED 100% \(1 image\)/,
  );
  await assert.rejects(
    cli('style', '--image', png, '--image-id', imageId, '--captions', 'a yellow flower'),
    /give exactly one of imageId and image/,
  );
  assert.equal((await readdir(out)).length, 1 + (3 + 1) + (2 + 1) + 2 + 1, 'the images and two animations');
  await assert.rejects(cli('generate', '--caption', 'a flower', '--count', 'four'), /--count must be a whole number/);
  const listed = (await cli('list', '--kind', 'TEXT_TO_IMAGE')).trim().split('\n');
  assert.ok(
    listed.some((l) => l.startsWith(first) && l.includes('SUCCEEDED')),
    listed.join('\n'),
  );
  // dates as a day or an instant; --before lists what delete with the same filter would delete
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  assert.ok((await cli('list', '--before', tomorrow)).includes(first));
  // nothing listed: nothing on stdout (for scripts), and a word on stderr
  assert.deepEqual(
    { ...(await run('list', '--kind', 'TEXT_TO_IMAGE', '--before', '2000-01-01')) },
    {
      stdout: '',
      stderr: 'no generations match\n',
    },
  );
  assert.equal((await cli('delete', '--before', '2000-01-01')).trim(), 'deleted 0 generations');
  // a misspelt option is refused before anything is sent: ignored, it would widen the deletion to every generation
  await assert.rejects(cli('delete', '--befor', '2000-01-01'), /unknown option --befor for delete \(its options: /);
  await assert.rejects(cli('constructor'), /unknown command "constructor"; npm run example -- help lists them/);
  // a value that looks like an option is a value
  assert.match(await cli('generate', '--caption', '--a flower', '--count', '1', '--out', out), /SUCCEEDED 100%/);
  assert.ok((await cli('list')).includes(first));
  await assert.rejects(cli('usage', '--from', 'last week'), /--from must be a date \(2026-11-01\) or a time/);
  // a time without its zone would be this machine's, not UTC as the API reads it (and delete would take another set)
  for (const loose of ['2026-12-03T00:03:00', 'Dec 3 2026'])
    await assert.rejects(
      cli('delete', '--before', loose),
      /--before must be a date \(2026-11-01\) or a time with its zone/,
    );
  assert.equal(await cli('list', '--before', '2000-01-01T01:00:00+01:00'), '');
  for (const help of [['help'], ['--help'], ['delete', '-h']])
    assert.match(await cli(...help), /^ganvas example client: every operation[^]*npm run example -- delete /);
  await assert.rejects(cli('cancel', '--id', first), /has already finished/);
  assert.match(await cli('usage'), /TEXT_TO_IMAGE +tiny {2}\d+ generations?, \d+ images?/);
  assert.match(await cli('quota'), /^requests this minute: \d+ of \d+\n.*\nimages in 24 hours: +\d+ \(no limit\)$/m);
  assert.match(await cli('models'), /^tiny \(default\): 32x32, 1 worker$/m);
  assert.match(await cli('webhook-secret'), /^whsec_/);
  await assert.rejects(cli('delete', '--id', first, '--status', 'FAILED'), /delete takes --id or a filter/);
  assert.equal((await cli('delete', '--id', first)).trim(), `deleted ${first}`);
  assert.match(await cli('delete', '--kind', 'NOISE_INTERPOLATION'), /^deleted 1 generation$/m);
});

test("examples/client.ts: a request's error carries its code and the input field at fault", async () => {
  const client = new GanvasClient(`http://127.0.0.1:${running.api!.port}`);
  try {
    await assert.rejects(
      client.generateImages({ caption: 'a flower', count: 17 }),
      (e: GanvasError) =>
        e.code === 'BAD_USER_INPUT' && e.field === 'count' && /count must be from 1 to 16/.test(e.message),
    );
  } finally {
    await client.close();
  }
});

test('examples/client.ts sends a creating request again with its idempotency key when the answer was lost: one generation', async () => {
  const api = `http://127.0.0.1:${running.api!.port}`;
  for (const lost of ['connection dropped', "a gateway's JSON 502", 'SERVICE_UNAVAILABLE']) {
    const posted: number[] = [];
    // a proxy that passes each request on, and loses the first answer (or answers it as a server without its database)
    const proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const first = req.method === 'POST' && posted.push(Date.now()) === 1;
      if (lost === 'SERVICE_UNAVAILABLE' && first)
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ errors: [{ message: 'down', extensions: { code: lost, retryAfterSeconds: 1 } }] }));
      const answer = await fetch(api + req.url, {
        method: req.method,
        headers: { 'content-type': 'application/json' },
        body: req.method === 'POST' ? Buffer.concat(chunks) : undefined,
      });
      const body = Buffer.from(await answer.arrayBuffer());
      if (first)
        return void (lost === 'connection dropped'
          ? res.socket!.destroy()
          : res.writeHead(502, { 'content-type': 'application/json' }).end('{"message":"Bad Gateway"}'));
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' }).end(body);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const client = new GanvasClient(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
    try {
      const before = await running.db.prisma.generation.count();
      const g = await client.generateImages({ caption: 'a flower asked once', count: 1 });
      assert.equal(posted.length, 2, `${lost}: sent twice`);
      // the first retry waits 0.5 s, or the server's retryAfterSeconds where it says more
      const waited = posted[1] - posted[0];
      assert.ok(waited >= (lost === 'SERVICE_UNAVAILABLE' ? 1000 : 450), `${lost}: retried after ${waited} ms`);
      assert.match(g.idempotencyKey!, /^[0-9a-f-]{36}$/);
      assert.equal(await running.db.prisma.generation.count(), before + 1, `${lost}: one generation`);
    } finally {
      await client.close();
      proxy.close();
    }
  }
});
