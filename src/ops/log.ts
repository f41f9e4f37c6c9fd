/**
 * The service's log: JSON lines (pino) with levels, one object a line, for log collectors; readable
 * coloured lines when a person runs it in a terminal. LOG_LEVEL (default info) and LOG_FORMAT (json or
 * pretty; default pretty on a terminal, json otherwise) choose. Writes are synchronous, so the last lines
 * before an exit are never lost.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export function createLogger(env: NodeJS.ProcessEnv = process.env, tty = Boolean(process.stdout.isTTY)): Logger {
  const format = env.LOG_FORMAT ?? (tty ? 'pretty' : 'json');
  if (format !== 'json' && format !== 'pretty') throw new Error(`LOG_FORMAT must be json or pretty, got "${format}"`);
  const level = env.LOG_LEVEL ?? 'info';
  const levels = [...Object.keys(pino.levels.values), 'silent'];
  if (!levels.includes(level)) throw new Error(`LOG_LEVEL must be one of ${levels.join(', ')}, got "${level}"`);
  const options = { level, base: { pid: process.pid } };
  const destination =
    format === 'pretty'
      ? pretty({ sync: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ sync: true });
  return pino(options, destination);
}

/** `n` and `word` for a line a person reads: "1 day", "3 days". */
export const counted = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** A logger that writes nothing (tests, benchmarks). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
