/**
 * ganvas processes for multi-process tests and benches: `npm run api` / `npm run worker` (and bench:service's page
 * baseline) as real child processes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first match of `pattern` in the process's output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startProcess(
  entry: 'bin/api.ts' | 'bin/worker.ts' | 'bench/bare-apollo.ts',
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Proc {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', ...nodeArgs, entry], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    waiters.forEach((w) => w());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => out,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${entry}: no ${pattern} within ${timeoutMs} ms; output:\n${out}`)),
          timeoutMs,
        );
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          }
        };
        waiters.push(check);
        check();
        child.once('exit', () => {
          if (!out.match(pattern)) {
            clearTimeout(timer);
            reject(new Error(`${entry} exited before ${pattern}; output:\n${out}`));
          }
        });
      }),
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The processes of one test file: API instances and workers with a shared environment, all killed at the end. */
export class ProcessGroup {
  readonly procs: Proc[] = [];

  constructor(public env: Record<string, string>) {}

  /** Starts `npm run api` (with `nodeArgs` before its entry) and returns its GraphQL URL once it listens. */
  async api(extra: Record<string, string> = {}, nodeArgs: string[] = []): Promise<{ proc: Proc; url: string }> {
    const proc = startProcess('bin/api.ts', { ...this.env, ...extra }, nodeArgs);
    this.procs.push(proc);
    return { proc, url: (await proc.waitFor(/GraphQL API at (http:\S+)/))[1].replace('localhost', '127.0.0.1') };
  }

  /** Starts `npm run worker` under `id` and returns it once it claims jobs. */
  async worker(id: string): Promise<Proc> {
    const proc = startProcess('bin/worker.ts', { ...this.env, WORKER_ID: id, WORKER_PORT: '0' });
    this.procs.push(proc);
    await proc.waitFor(new RegExp(`worker ${id}`));
    return proc;
  }

  killAll(): Promise<void[]> {
    return Promise.all(this.procs.map((p) => p.kill('SIGKILL')));
  }
}
