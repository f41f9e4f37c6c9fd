/**
 * `--name value` / `--flag` command-line parsing with typed reads and clear errors. A command reads its
 * options, then calls end(): an option it never read (a typo, another command's) is an error, not ignored.
 */
import { messageOf } from '../errors.ts';

export class Args {
  /** null: the option was given without a value (a flag; an error where a value is read). */
  private readonly values = new Map<string, string | null>();
  private readonly known = new Set<string>();
  readonly positional: string[] = [];

  constructor(argv: string[]) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith('--')) {
        this.positional.push(a);
        continue;
      }
      const eq = a.indexOf('=');
      if (eq > 0) this.values.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) this.values.set(a.slice(2), argv[++i]);
      else this.values.set(a.slice(2), null);
    }
  }

  string(name: string, fallback: string): string;
  string(name: string): string | undefined;
  string(name: string, fallback?: string): string | undefined {
    return this.get(name) ?? fallback;
  }

  required(name: string): string {
    const v = this.get(name);
    if (v === undefined) throw new Error(`missing --${name}`);
    return v;
  }

  int(name: string, fallback: number): number {
    const v = this.get(name);
    if (v === undefined) return fallback;
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got "${v}"`);
    return n;
  }

  number(name: string, fallback: number): number;
  number(name: string): number | undefined;
  number(name: string, fallback?: number): number | undefined {
    const v = this.get(name);
    if (v === undefined) return fallback;
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${v}"`);
    return n;
  }

  flag(name: string): boolean {
    this.known.add(name);
    const v = this.values.get(name);
    return v !== undefined && v !== 'false';
  }

  /** Throws naming every option given that the command did not read (and the ones it knows). */
  end(): void {
    const unknown = [...this.values.keys()].filter((name) => !this.known.has(name));
    if (unknown.length === 0) return;
    const known = [...this.known].sort().map((k) => `--${k}`);
    throw new Error(
      `unknown option ${unknown.map((u) => `--${u}`).join(', ')}${known.length ? ` (options here: ${known.join(' ')})` : ' (this command takes no options)'}`,
    );
  }

  /** The option's value; an option given without one (`--out --images 9`) is an error here. */
  private get(name: string): string | undefined {
    this.known.add(name);
    const v = this.values.get(name);
    if (v === null) throw new Error(`--${name} needs a value`);
    return v;
  }
}

/** Runs a CLI entry point: errors print as one line and exit 1. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(), // process.exitCode where a command set one
    (err: unknown) => {
      console.error(`error: ${messageOf(err)}`);
      if (process.env.DEBUG) console.error(err);
      process.exit(1);
    },
  );
}
