import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/** Waits until `f` holds, asking every 100 ms for 10 s; then fails with `what`. */
export const until = async (what: string, f: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 100 && !(await f()); i++) await sleep(100);
  assert.ok(await f(), what);
};
