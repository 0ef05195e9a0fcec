import type { Tensor } from '../src/engine/index.js';

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

/**
 * The tokenizer benchmark protocol shared by bench/magvit2 and bench/larp: encode and decode medians of 5 after
 * one warm-up, then the training step (compiled and run once, then a median of 3); prints the JSON result line.
 */
export function benchTokenizer(
  tok: { encode(x: Tensor): Tensor; decode(ids: Tensor): unknown },
  step: { run(x: Tensor): unknown },
  x: Tensor,
  info: { threads: number; params: number },
): void {
  let ids = tok.encode(x);
  const encodeMs = timeMs(() => (ids = tok.encode(x)), 1, 5, 'encode');
  console.error(`encode median ${encodeMs.toFixed(1)} ms; ${ids.size} tokens; peak RSS ${peakRssGb()} GB`);
  const decodeMs = timeMs(() => tok.decode(ids), 1, 5, 'decode');
  console.error(`decode median ${decodeMs.toFixed(1)} ms; peak RSS ${peakRssGb()} GB`);
  const t = performance.now();
  step.run(x);
  console.error(`train step compiled + first step in ${(performance.now() - t).toFixed(0)} ms`);
  const trainMs = timeMs(() => step.run(x), 0, 3, 'train step');
  console.error(`train step median ${trainMs.toFixed(1)} ms; peak RSS ${peakRssGb()} GB`);
  console.log(JSON.stringify({ encode_ms: round1(encodeMs), decode_ms: round1(decodeMs), train_step_ms: round1(trainMs), ...info }));
}
