/** What the benches' processes cost in CPU, read from /proc (Linux; elsewhere every figure reads 0). */
import { readFile, readdir } from 'node:fs/promises';

/** One process of this machine and the CPU seconds (user + system, all threads) it has used so far. */
export interface ProcessCpu {
  pid: number;
  name: string;
  seconds: number;
}

/** Every process of this machine, read once. */
export async function processesCpu(): Promise<ProcessCpu[]> {
  const out: ProcessCpu[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({
      pid: Number(pid),
      name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      seconds: (Number(fields[11]) + Number(fields[12])) / 100, // utime, stime in USER_HZ
    });
  }
  return out;
}

/** The CPU seconds of the processes `which` picks, in one reading. */
export const cpuOf = (processes: ProcessCpu[], which: (p: ProcessCpu) => boolean): number =>
  processes.filter(which).reduce((sum, p) => sum + p.seconds, 0);

/** Every postgres process of this machine: the server under test. */
export const isPostgres = (p: ProcessCpu): boolean => p.name === 'postgres';
