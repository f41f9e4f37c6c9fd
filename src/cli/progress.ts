/** A one-line progress bar for long work (data generation, training, evaluation): step, rate, ETA, extras. */
export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private lastLine = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly startAt = 0,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Redraws at most 5 times a second (always on the last step). `extra` is shown after the bar. */
  update(done: number, extra = ''): void {
    const now = Date.now();
    if (now - this.lastDraw < 200 && done < this.total) return;
    this.lastDraw = now;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const perStep = (now - this.started) / Math.max(1, done - this.startAt);
    const eta = (this.total - done) * perStep;
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${perStep.toFixed(0)} ms/step ETA ${formatDuration(eta)} ${extra}`;
    if (this.out.isTTY) return void this.out.write(`\r${line}\x1b[K`);
    // in a log: a line per tenth of the way, and at least one every 30 s
    const decile = Math.floor(frac * 10);
    if (decile !== this.lastDecile || now - this.lastLine > 30_000) {
      this.out.write(`${line}\n`);
      this.lastLine = now;
    }
    this.lastDecile = decile;
  }

  finish(extra = ''): void {
    this.lastDraw = 0;
    this.update(this.total, extra);
    if (this.out.isTTY) this.out.write('\n');
  }
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
