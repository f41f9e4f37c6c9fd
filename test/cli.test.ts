/**
 * Command lines: options are typed, and an option a command does not know is an error naming it (a typo is not
 * ignored).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Args } from '../src/cli/args.ts';

test('options read as typed values; unknown ones are refused with the known ones listed', () => {
  const a = new Args(['ckpt', '--steps', '20', '--lr=0.5', '--float32', '--stpes', '3']);
  assert.deepEqual(a.positional, ['ckpt']);
  assert.equal(a.int('steps', 1), 20);
  assert.equal(a.number('lr', 1), 0.5);
  assert.equal(a.flag('float32'), true);
  assert.equal(a.string('out', 'x'), 'x');
  assert.throws(() => a.end(), /unknown option --stpes \(options here: --float32 --lr --out --steps\)/);
  assert.throws(() => new Args(['--steps', 'many']).int('steps', 1), /--steps must be an integer, got "many"/);
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
