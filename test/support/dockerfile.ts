/**
 * A Dockerfile rehearsed without Docker: its stages' COPY and RUN steps in order, in a scratch folder per
 * stage (the container's /app is <scratch>/<stage>/app), then its CMD and HEALTHCHECK started there. What
 * the base images provide (system packages, users, Node itself) is not simulated: RUN steps that install
 * system packages or users are skipped, and a COPY --from of a path the earlier stage did not make (Node's
 * binary) is too. A COPY of a file the build context lacks, or a RUN that fails, fails the rehearsal, so
 * a Dockerfile that builds before its sources are copied fails here as it does in `docker build`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';

export interface Step {
  instruction: string;
  args: string;
}

export interface Stage {
  name: string;
  from: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string | null;
  cmd: string[] | null;
  healthcheck: string[] | null;
  exposed: number[];
  skipped: string[];
}

/** The instructions of a Dockerfile: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Step[] {
  const steps: Step[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue; // also inside a continued instruction, as Docker reads it
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(current);
    if (m) steps.push({ instruction: m[1].toUpperCase(), args: m[2].trim() });
    current = '';
  }
  return steps;
}

/**
 * .dockerignore's patterns as a test on a context-relative path (names, folders and `*` globs, as ganvas uses them).
 */
function ignoredBy(contextDir: string): (rel: string) => boolean {
  const file = join(contextDir, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];
  const regexes = patterns.map(
    (p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`),
  );
  return (rel) => regexes.some((r) => r.test(rel));
}

const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);
const execForm = (s: string): string[] => JSON.parse(s) as string[];
/** Steps that set up the base system, not the app: left to the base image. */
const SYSTEM_STEP = /\b(apt-get|useradd|adduser|apk)\b/;

export class Rehearsal {
  readonly stages: Stage[] = [];
  private readonly ignored: (rel: string) => boolean;

  constructor(
    private readonly contextDir: string,
    private readonly scratch: string,
    private readonly buildArgs: Record<string, string> = {},
    private readonly log: (line: string) => void = () => {},
  ) {
    this.ignored = ignoredBy(contextDir);
  }

  /** Runs every step of `dockerfile` (a path in the context); throws at the first that would fail a build. */
  build(dockerfile: string): Stage {
    const args: Record<string, string> = {};
    for (const step of parseDockerfile(readFileSync(join(this.contextDir, dockerfile), 'utf8'))) {
      const stage = this.stages.at(-1);
      if (step.instruction === 'FROM') {
        const [from, as, name] = words(step.args);
        const root = join(this.scratch, `stage${this.stages.length}`);
        mkdirSync(root, { recursive: true });
        this.stages.push({
          name: as?.toUpperCase() === 'AS' ? name : String(this.stages.length),
          from,
          root,
          workdir: '/',
          env: {},
          user: null,
          cmd: null,
          healthcheck: null,
          exposed: [],
          skipped: [],
        });
        continue;
      }
      if (!stage) throw new Error(`${dockerfile}: ${step.instruction} before FROM`);
      this.log(`[${stage.name}] ${step.instruction} ${step.args}`);
      switch (step.instruction) {
        case 'WORKDIR':
          stage.workdir = step.args.startsWith('/') ? step.args : join(stage.workdir, step.args);
          mkdirSync(this.inStage(stage, stage.workdir), { recursive: true });
          break;
        case 'ENV':
          for (const m of step.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[m[1]] = m[2].replace(/^"|"$/g, '');
          break;
        case 'ARG': {
          const [name, fallback] = step.args.split('=');
          args[name] = this.buildArgs[name] ?? fallback ?? '';
          break;
        }
        case 'COPY':
          this.copy(stage, step.args);
          break;
        case 'RUN':
          this.run(stage, step.args, args);
          break;
        case 'USER':
          stage.user = step.args;
          break;
        case 'EXPOSE':
          stage.exposed.push(...words(step.args).map((p) => Number.parseInt(p, 10)));
          break;
        case 'CMD':
          stage.cmd = execForm(step.args);
          break;
        case 'HEALTHCHECK': {
          const m = /\bCMD\s+(\[.*\])\s*$/.exec(step.args);
          if (!m) throw new Error(`${dockerfile}: HEALTHCHECK needs an exec-form CMD`);
          stage.healthcheck = execForm(m[1]);
          break;
        }
        default:
          throw new Error(`${dockerfile}: ${step.instruction} is not rehearsed`);
      }
    }
    return this.stages.at(-1)!;
  }

  /** A container path of a stage, on this machine. */
  inStage(stage: Stage, path: string): string {
    return join(stage.root, path);
  }

  private copy(stage: Stage, argString: string): void {
    const parts = words(argString);
    const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
    const paths = parts.filter((p) => !p.startsWith('--'));
    const dest = paths.pop()!;
    const target = this.inStage(stage, dest.startsWith('/') ? dest : join(stage.workdir, dest));
    // as Docker copies: a folder's contents into dest; a file into dest, or into the folder dest/ names
    const into = (path: string, src: string) =>
      dest.endsWith('/') && statSync(path).isFile() ? join(target, basename(src)) : target;
    for (const src of paths) {
      if (from !== undefined) {
        const source = this.stages.find((s) => s.name === from);
        if (!source) throw new Error(`COPY --from=${from}: no such stage`);
        const path = this.inStage(source, src);
        if (!existsSync(path)) {
          stage.skipped.push(`COPY --from=${from} ${src} (provided by its base image ${source.from})`);
          continue;
        }
        cpSync(path, into(path, src), { recursive: true });
        continue;
      }
      const path = join(this.contextDir, src);
      if (!existsSync(path) || this.ignored(relative(this.contextDir, path)))
        throw new Error(`COPY ${src}: not in the build context`);
      const to = into(path, src);
      mkdirSync(dirname(to), { recursive: true });
      cpSync(path, to, {
        recursive: true,
        filter: (p) => p === path || !this.ignored(relative(this.contextDir, p)),
      });
    }
  }

  private run(stage: Stage, command: string, args: Record<string, string>): void {
    if (SYSTEM_STEP.test(command)) {
      stage.skipped.push(`RUN ${command.slice(0, 60)}... (system setup of the base image)`);
      return;
    }
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', command], {
      cwd: this.inStage(stage, stage.workdir),
      // a build does not see this machine's environment; npm's cache in HOME is shared to save downloads
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...args, ...stage.env },
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0)
      throw new Error(
        `RUN ${command}\nexited ${r.status}:\n${(r.stdout ?? '').slice(-4000)}${(r.stderr ?? '').slice(-4000)}`,
      );
  }
}

/** The files of a fresh clone of this repository (tracked and new files git does not ignore), copied into `dir`. */
export function cloneWorkingTree(root: string, dir: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(root, f))) continue; // deleted, not yet committed
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(root, f), join(dir, f));
  }
}
