/** Timing helpers shared by the benchmarks: medians after warm-up, progress on stderr. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function timeMs(fn: () => void, warmup: number, runs: number, label: string): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    console.error(`  ${label} run ${i + 1}/${runs}: ${times[i].toFixed(1)} ms`);
  }
  return median(times);
}

export const round1 = (v: number) => Math.round(v * 10) / 10;

/** Peak resident memory so far, in GB. */
export const peakRssGb = () => Math.round((process.resourceUsage().maxRSS / 1024 / 1024) * 100) / 100;
