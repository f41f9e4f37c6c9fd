/**
 * Command lines: options are typed, and an option a command does not know is an error naming it (a typo is not
 * ignored); the key commands on Postgres, and refused on an embedded database another process has open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Args } from '../src/cli/args.ts';
import { lockDataDir, openDatabase } from '../src/db/database.ts';
import { freshPostgres } from './support/db.ts';

test('options read as typed values; unknown ones are refused with the known ones listed', () => {
  const a = new Args(['ckpt', '--steps', '20', '--lr=0.5', '--float32', '--stpes', '3']);
  assert.deepEqual(a.positional, ['ckpt']);
  assert.equal(a.int('steps', 1), 20);
  assert.equal(a.number('lr', 1), 0.5);
  assert.equal(a.flag('float32'), true);
  assert.equal(a.string('out', 'x'), 'x');
  assert.throws(() => a.end(), /unknown option --stpes \(options here: --float32 --lr --out --steps\)/);
  assert.throws(() => new Args(['--steps', 'many']).int('steps', 1), /--steps must be an integer, got "many"/);
  // an empty value is not 0
  assert.throws(() => new Args(['--lr=']).number('lr', 1), /--lr must be a number, got ""/);
  assert.throws(() => new Args(['--steps= ']).int('steps', 1), /--steps must be an integer, got " "/);
  assert.equal(new Args([]).number('lr'), undefined);
  // an option given without its value is not the string "true" (`--out --images 9` wrote into ./true)
  const bare = new Args(['--out', '--images', '9', '--name']);
  assert.throws(() => bare.string('out', 'x'), /--out needs a value/);
  assert.throws(() => bare.required('name'), /--name needs a value/);
  assert.equal(bare.int('images', 1), 9);
});

test('a training command with a misspelt option stops before it trains', async () => {
  const run = promisify(execFile)(
    process.execPath,
    ['-r', '@swc-node/register', 'bin/train.ts', '--data', 'nowhere', '--out', 'nowhere', '--gan-setps', '10'],
    { cwd: join(__dirname, '..') },
  );
  await assert.rejects(
    run,
    (err: { code: number; stderr: string }) => err.code === 1 && /unknown option --gan-setps/.test(err.stderr),
  );
});

test('key:create, key:list, key:limits, key:rotate-secret and key:revoke by --name or --id', async () => {
  const pgdb = await freshPostgres(`${__filename}-keys`);
  const key = async (...args: string[]) =>
    (
      await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', 'bin/key.ts', ...args], {
        cwd: join(__dirname, '..'),
        env: { ...process.env, DATABASE_URL: pgdb.url },
      })
    ).stdout
      .trim()
      .split('\n');
  try {
    // a server's database is migrated by its release, not by a key command (from whatever checkout it runs)
    await assert.rejects(key('list'), /the database is \d+ migration\(s\) behind this checkout .*npm run db:migrate/);
    const migrated = await promisify(execFile)(process.execPath, ['-r', '@swc-node/register', 'bin/migrate.ts'], {
      cwd: join(__dirname, '..'),
      env: { ...process.env, DATABASE_URL: pgdb.url },
    });
    assert.match(migrated.stdout, /^database: postgres at [^@\s]+\/\S+ \(DATABASE_URL\)\n/);
    assert.match(migrated.stdout, /applied \d+ migration\(s\)/);
    const created = await key('create', '--name', 'cli team', '--images-per-day', '100');
    const id = /created API key (\S+)/.exec(created[0])![1];
    assert.match(created[1], /^whsec_/);
    assert.match(created.at(-1)!, /^gnv_/);
    await key('limits', '--name', 'cli team', '--rate', '5', '--queued', 'default');
    const secret = await key('rotate-secret', '--id', id);
    assert.match(secret.at(-1)!, /^whsec_/);
    assert.notEqual(secret.at(-1), created[1]);
    const [header, row] = await key('list');
    assert.match(row, new RegExp(`^${id}  \\d{4}-\\d\\d-\\d\\d  -\\s+5  default  +100  cli team$`));
    // the columns line up under their headers, "default" too
    const at = (name: string) => header.indexOf(name);
    for (const name of ['created', 'name']) assert.equal(row.slice(at(name) - 2, at(name) + 1).trim().length, 1, name);
    for (const name of ['rate', 'queued', 'images/day'])
      assert.match(row.slice(at(name) + name.length - 1, at(name) + name.length + 2), /^\S {2}/, name);
    await key('revoke', '--name', 'cli team');
    assert.match((await key('list'))[1], /^\S+ {2}\S+ {2}\d{4}-\d\d-\d\d /);
    await assert.rejects(key('revoke', '--name', 'cli team'), /no unrevoked API key named "cli team"/);
    await assert.rejects(key('limits', '--id', id, '--name', 'cli team'), /exactly one of --id and --name/);
    await assert.rejects(key('limits', '--id', id, '--rate', 'lots'), /--rate must be a positive integer/);
    // over the column's range: refused before anything is written, not a key made without its limits
    await assert.rejects(
      key('create', '--name', 'too many', '--queued', '3000000000'),
      /--queued must be a positive integer up to 2147483647/,
    );
    assert.ok(!(await key('list')).some((line) => line.endsWith('too many')));
    await assert.rejects(key('limits', '--id', id), /give the limits to set/);
    await assert.rejects(key('list', '--name', 'cli team'), /unknown option --name/);
  } finally {
    await pgdb.drop();
  }
});

test('an embedded database open in one process is refused to another (PGlite writes from one), and its lock goes with it', async () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'ganvas-lock-')), 'data');
  const keyList = () =>
    promisify(execFile)(process.execPath, ['-r', '@swc-node/register', 'bin/key.ts', 'list'], {
      cwd: join(__dirname, '..'),
      env: { ...process.env, DATABASE_URL: '', GANVAS_DATA_DIR: dataDir },
    });
  const db = await openDatabase({ url: null, dataDir });
  try {
    await assert.rejects(
      keyList(),
      (err: { code: number; stderr: string }) =>
        err.code === 1 && err.stderr.includes(`${dataDir} is open in process ${process.pid}`),
    );
  } finally {
    await db.close();
  }
  assert.equal(existsSync(`${dataDir}.lock`), false);
  assert.match((await keyList()).stdout, /^id +created/);
  // a lock whose process is gone is taken over
  const exited = await promisify(execFile)(process.execPath, ['-e', 'console.log(process.pid)']);
  writeFileSync(`${dataDir}.lock`, exited.stdout.trim());
  lockDataDir(dataDir)();
  assert.equal(existsSync(`${dataDir}.lock`), false);
  // one naming this process, which does not hold it, was left by an earlier process with this pid: taken over too
  writeFileSync(`${dataDir}.lock`, String(process.pid));
  const release = lockDataDir(dataDir);
  assert.throws(() => lockDataDir(dataDir), /already open in this process/);
  // a release removes only its own lock; the refusal names the file
  writeFileSync(`${dataDir}.lock`, String(process.ppid));
  release();
  assert.equal(readFileSync(`${dataDir}.lock`, 'utf8'), String(process.ppid));
  assert.throws(
    () => lockDataDir(dataDir),
    (err: Error) => err.message.includes(`delete ${dataDir}.lock`),
  );
  rmSync(`${dataDir}.lock`);
});
