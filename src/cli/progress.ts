/**
 * A progress bar on stderr for long operations: drawn only on a TTY, silent
 * with --json or when output is piped (then the final summary is enough).
 */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    options: { quiet?: boolean } = {},
  ) {
    this.enabled = !options.quiet && process.stderr.isTTY === true;
  }

  tick(n = 1, note = ''): void {
    this.done += n;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 50 && this.done < this.total) return;
    this.lastDraw = now;
    const width = 28;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const secs = (now - this.started) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    process.stderr.write(
      `\r${this.label} ${bar} ${this.done}/${this.total} ${rate.toFixed(1)}/s eta ${eta.toFixed(0)}s ${note}`.slice(0, process.stderr.columns ?? 120).padEnd(Math.min(process.stderr.columns ?? 120, 100)),
    );
  }

  end(): void {
    if (this.enabled) process.stderr.write('\n');
  }
}

/**
 * One redrawn line of status on stderr, for work with no single total to draw
 * a bar of (an ensemble's members, each at its own epoch): drawn only on a
 * TTY and not when quiet, like Progress; clear() before writing other lines.
 */
export class StatusLine {
  private readonly enabled: boolean;
  private shown = false;
  private last = 0;

  constructor(quiet: boolean) {
    this.enabled = !quiet && process.stderr.isTTY === true;
  }

  draw(text: string): void {
    const now = Date.now();
    if (!this.enabled || now - this.last < 200) return;
    this.last = now;
    const width = process.stderr.columns ?? 120;
    process.stderr.write(`\r${text.slice(0, width - 1).padEnd(Math.min(width - 1, 100))}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write(`\r${' '.repeat(Math.min((process.stderr.columns ?? 120) - 1, 100))}\r`);
    this.shown = false;
  }
}

/** A line of status on stderr, unless quiet. */
export function status(quiet: boolean, message: string): void {
  if (!quiet) process.stderr.write(`${message}\n`);
}
