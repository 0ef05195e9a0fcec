import cliProgress from 'cli-progress';

/**
 * A progress bar with rate and ETA for long work. On a terminal it redraws in place; elsewhere (CI, pipes) it
 * prints a plain line every few seconds so logs stay readable.
 */
export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

/** `bytes`: the counts are bytes, shown as kB/MB/GB (downloads). */
export function progress(label: string, total: number, opts: { quiet?: boolean; bytes?: boolean } = {}): Progress {
  if (opts.quiet) return { update() {}, stop() {} };
  const start = Date.now();
  const count = opts.bytes ? formatBytes : String;
  const rateOf = (done: number) => {
    const rate = done / Math.max(1e-3, (Date.now() - start) / 1000);
    return opts.bytes ? `${formatBytes(rate)}/s` : `${rate.toFixed(2)}/s`;
  };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} | {rate} | ETA {eta_formatted} {info}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 20,
        formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? count(v) : String(v)),
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: rateOf(0), info: '' });
    return {
      update(done, fields) {
        bar.update(done, { rate: rateOf(done), info: formatFields(fields) });
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
      const rate = done / Math.max(1e-3, (now - start) / 1000);
      const eta = rate > 0 ? (total - done) / rate : 0;
      process.stderr.write(
        `${label} ${count(done)}/${count(total)} | ${rateOf(done)} | ETA ${eta.toFixed(0)}s ${formatFields(fields)}\n`,
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

/** A byte count in decimal units to three digits, as download tools show it: 512 B, 3.40 kB, 173 MB, 2.96 GB. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${units[i]}`;
}
