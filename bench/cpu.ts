/** What the benches' processes cost in CPU, read from /proc (Linux; elsewhere every figure reads 0). */
import { readFile, readdir } from 'node:fs/promises';

/** CPU seconds (user + system, all threads) used so far by the processes of this machine that `which` picks. */
export async function cpuSeconds(which: (pid: number, name: string) => boolean): Promise<number> {
  let ticks = 0;
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (!stat || !which(Number(pid), name)) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
  }
  return ticks / 100; // USER_HZ
}

/** Every postgres process of this machine: the server under test. */
export const isPostgres = (_: number, name: string): boolean => name === 'postgres';
