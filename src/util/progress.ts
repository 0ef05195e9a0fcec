import cliProgress from 'cli-progress';

/**
 * A progress bar with rate and ETA for long work. On a terminal it redraws in place; elsewhere (CI, pipes) it
 * prints a plain line every few seconds so logs stay readable.
 */
export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export function progress(label: string, total: number, opts: { quiet?: boolean } = {}): Progress {
  if (opts.quiet) return { update() {}, stop() {} };
  const start = Date.now();
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} | {rate}/s | ETA {eta_formatted} {info}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0.0', info: '' });
    return {
      update(done, fields) {
        const rate = done / Math.max(1e-3, (Date.now() - start) / 1000);
        bar.update(done, { rate: rate.toFixed(2), info: formatFields(fields) });
      },
      stop() {
        bar.stop();
      },
    };
  }
  let last = 0;
  return {
    update(done, fields) {
      const now = Date.now();
      if (now - last < 5000 && done < total) return;
      last = now;
      const secs = (now - start) / 1000;
      const rate = done / Math.max(1e-3, secs);
      const eta = rate > 0 ? (total - done) / rate : 0;
      process.stderr.write(
        `${label} ${done}/${total} | ${rate.toFixed(2)}/s | ETA ${eta.toFixed(0)}s ${formatFields(fields)}\n`,
      );
    },
    stop() {},
  };
}

function formatFields(fields?: Record<string, string | number>): string {
  if (!fields) return '';
  return Object.entries(fields)
    .map(
      ([k, v]) =>
        `${k}=${typeof v === 'number' ? (Math.abs(v) >= 1e-3 || v === 0 ? v.toPrecision(4) : v.toExponential(2)) : v}`,
    )
    .join(' ');
}
