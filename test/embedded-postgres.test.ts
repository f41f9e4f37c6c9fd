/**
 * Where no Postgres answers, the tests start one of their own (test/support/embedded-postgres.ts): checked
 * here even on a machine that runs one, in a child process that looks for it where nothing listens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const ROOT = join(__dirname, '..');

test('with no Postgres to be found, a fresh database is made on an embedded Postgres, stopped and deleted when the run is over', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, TEST_PG_PROBE: '127.0.0.1:1' };
  delete env.TEST_DATABASE_URL;
  delete env.NODE_TEST_CONTEXT; // the child is a run of its own: its Postgres lives as long as it does
  const script = `(async () => {
    const { freshPostgres } = require('./test/support/db.ts');
    const pg = require('pg');
    const db = await freshPostgres('embedded.test.ts');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE t (x text)');
    await c.query("INSERT INTO t VALUES ('ärger')");
    const row = (await c.query("SELECT upper(x) AS up, current_database() AS name, current_setting('server_version_num')::int AS version FROM t")).rows[0];
    await c.end();
    await db.drop();
    console.log(JSON.stringify({ url: db.url, pid: process.pid, ...row }));
  })().catch((e) => { console.error(e); process.exit(1); });`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', '-e', script], {
    cwd: ROOT,
    env,
    timeout: 120_000,
  });
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    url: string;
    pid: number;
    up: string;
    name: string;
    version: number;
  };
  const url = new URL(out.url);
  assert.equal(url.hostname, '127.0.0.1');
  assert.notEqual(url.port, '1');
  assert.match(out.name, /^ganvas_embedded_test_ts_\d+$/);
  assert.equal(out.up, 'ÄRGER');
  assert.ok(out.version >= 150000);

  // the child has exited: its keeper stops the server and deletes its folder
  const runDir = join(tmpdir(), `ganvas-test-pg-${process.getuid?.() ?? 0}`, `run-${out.pid}`);
  url.pathname = '/postgres';
  let stopped = false;
  for (
    const deadline = Date.now() + 30_000;
    !stopped && Date.now() < deadline;
    await new Promise((r) => setTimeout(r, 200))
  ) {
    const c = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 1000 });
    c.on('error', () => {}); // the keeper may stop the server while this probe is connected (57P01)
    stopped = await c.connect().then(
      () => false,
      () => true,
    );
    await c.end().catch(() => {});
    stopped &&= !existsSync(runDir);
  }
  assert.ok(stopped, `${out.url} still answers or ${runDir} is still there`);
});
