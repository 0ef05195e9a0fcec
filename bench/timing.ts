import type { Tensor } from '../src/engine/index.js';
import { readFileSync, writeFileSync } from 'node:fs';
import * as E from '../src/engine/index.js';
import { collectGarbage } from '../src/util/gc.js';

/** Timing helpers shared by the benchmarks: medians after warm-up, progress on stderr. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function timeMs(fn: () => void, warmup: number, runs: number, label: string): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
    console.error(`  ${label} run ${i + 1}/${runs}: ${times[i]!.toFixed(1)} ms`);
  }
  return median(times);
}

export const round1 = (v: number) => Math.round(v * 10) / 10;

/** Peak resident memory so far, in GB. */
export const peakRssGb = () => Math.round((process.resourceUsage().maxRSS / 1024 / 1024) * 100) / 100;

/**
 * Peak RSS since the last `resetPeakRss()` (Linux: VmHWM, which writing 5 to /proc/self/clear_refs resets), so a
 * stage's peak is its own; elsewhere the process's peak.
 */
export function stagePeakRssGb(): number {
  try {
    const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    if (kb > 0) return Math.round((kb / 1024 / 1024) * 100) / 100;
  } catch {
    /* not Linux */
  }
  return peakRssGb();
}
export function resetPeakRss(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    /* not Linux: stagePeakRssGb reports the process's peak */
  }
}

interface BenchTok {
  encode(x: Tensor): Tensor;
  decode(ids: Tensor): Tensor;
  release?(): void;
}

/** Times `a` and `b` alternately (`runs` each, after one warm-up of each); medians of both. */
export function timeAlternating(
  a: () => void,
  b: () => void,
  runs: number,
  labels: [string, string],
): [number, number] {
  a();
  b();
  const ta: number[] = [],
    tb: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const [fn, times, label] of [
      [a, ta, labels[0]],
      [b, tb, labels[1]],
    ] as const) {
      const t = performance.now();
      fn();
      times.push(performance.now() - t);
      console.error(`  ${label} run ${i + 1}/${runs}: ${times[i]!.toFixed(1)} ms`);
    }
  }
  return [median(ta), median(tb)];
}

/** PSNR (dB, range [−1, 1] as 8-bit) of `b` against `a`. */
function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i]! - b[i]!) * 127.5;
    se += d * d;
  }
  return 10 * Math.log10((255 * 255) / (se / a.length));
}

/**
 * The tokenizer benchmark protocol shared by bench/magvit2 and bench/larp: encode and decode medians of 5 after
 * one warm-up, then the training step (compiled and run once, then a median of 3); prints the JSON result line.
 * With `int8` (the same model behind a tokenizer set to int8), int8 encode/decode are calibrated on `x` and
 * timed alternately with fp32 in the same process (5 runs each, medians); the fp32 medians of those runs are
 * encode_ms/decode_ms. Also reported: the id agreement of int8 encode with fp32 (and of the bits, given
 * `idBits`), and the PSNR of int8 decode against fp32 decode of the same ids (null when identical).
 */
export function benchTokenizer(
  tok: BenchTok,
  step: { run(x: Tensor): unknown } | null,
  x: Tensor,
  info: { threads: number; params: number },
  int8?: BenchTok,
  opts: { idBits?: number } = {},
): void {
  let ids = tok.encode(x);
  let encodeMs: number, decodeMs: number;
  let extra: Record<string, number | string> = {};
  if (!int8) {
    encodeMs = timeMs(() => (ids = tok.encode(x)), 1, 5, 'encode');
    console.error(`encode median ${encodeMs.toFixed(1)} ms; ${ids.size} tokens; peak RSS ${peakRssGb()} GB`);
    decodeMs = timeMs(() => tok.decode(ids), 1, 5, 'decode');
    console.error(`decode median ${decodeMs.toFixed(1)} ms; peak RSS ${peakRssGb()} GB`);
  } else {
    let t = performance.now();
    let ids8 = int8.encode(x);
    const calibEncode = performance.now() - t;
    t = performance.now();
    const rec8 = int8.decode(ids);
    const calibDecode = performance.now() - t;
    console.error(
      'int8 encode compiled (calibrated, quantized) + first run ' +
        `${calibEncode.toFixed(0)} ms, decode ${calibDecode.toFixed(0)} ms`,
    );
    let encode8Ms: number, decode8Ms: number;
    [encodeMs, encode8Ms] = timeAlternating(
      () => (ids = tok.encode(x)),
      () => (ids8 = int8.encode(x)),
      5,
      ['encode fp32', 'encode int8'],
    );
    console.error(
      `encode median fp32 ${encodeMs.toFixed(1)} ms, int8 ${encode8Ms.toFixed(1)} ms ` +
        `(×${(encodeMs / encode8Ms).toFixed(2)}); ${ids.size} tokens; peak RSS ${peakRssGb()} GB`,
    );
    [decodeMs, decode8Ms] = timeAlternating(
      () => tok.decode(ids),
      () => int8.decode(ids),
      5,
      ['decode fp32', 'decode int8'],
    );
    console.error(
      `decode median fp32 ${decodeMs.toFixed(1)} ms, int8 ${decode8Ms.toFixed(1)} ms ` +
        `(×${(decodeMs / decode8Ms).toFixed(2)}); peak RSS ${peakRssGb()} GB`,
    );
    const a = E.toArray(ids),
      b = E.toArray(ids8);
    const agreement = a.filter((v, i) => v === b[i]).length / a.length;
    // LFQ ids are bit patterns: the share of equal bits says more than whole ids when there are many bits
    let bitAgreement: number | undefined;
    if (opts.idBits) {
      let same = 0;
      a.forEach((v, i) => {
        for (let k = 0, d = v ^ b[i]!; k < opts.idBits!; k++, d >>>= 1) same += 1 - (d & 1);
      });
      bitAgreement = same / (a.length * opts.idBits);
      console.error(`int8 vs fp32: ${(100 * bitAgreement).toFixed(2)}% of the ${opts.idBits}-bit codes agree`);
    }
    const decodePsnr = psnr(tok.decode(ids).data as Float32Array, rec8.data as Float32Array);
    console.error(
      `int8 vs fp32: id agreement ${(100 * agreement).toFixed(2)}%, decode PSNR ${decodePsnr.toFixed(2)} dB`,
    );
    const kernels = E.backend().int8Kernels();
    extra = {
      int8_weights: kernels.weights,
      int8_kernels: kernels.reason,
      encode_int8_ms: round1(encode8Ms),
      decode_int8_ms: round1(decode8Ms),
      encode_int8_speedup: Math.round((encodeMs / encode8Ms) * 100) / 100,
      decode_int8_speedup: Math.round((decodeMs / decode8Ms) * 100) / 100,
      int8_calibrate_encode_ms: Math.round(calibEncode),
      int8_calibrate_decode_ms: Math.round(calibDecode),
      int8_id_agreement: Math.round(agreement * 1e4) / 1e4,
      int8_decode_psnr_vs_fp32: Math.round(decodePsnr * 100) / 100,
      ...(bitAgreement === undefined ? {} : { int8_bit_agreement: Math.round(bitAgreement * 1e4) / 1e4 }),
    };
  }
  let trainMs: number | undefined;
  if (step) {
    // The inference sessions (weights baked in, activation arenas: 7 GB for Open-MAGVIT2) would otherwise still be
    // resident while the training step runs, as they are not in a training job.
    tok.release?.();
    int8?.release?.();
    collectGarbage();
    resetPeakRss();
    const t = performance.now();
    step.run(x);
    console.error(`train step compiled + first step in ${(performance.now() - t).toFixed(0)} ms`);
    trainMs = timeMs(() => step.run(x), 0, 3, 'train step');
    console.error(`train step median ${trainMs.toFixed(1)} ms; peak RSS of the training steps ${stagePeakRssGb()} GB`);
  }
  console.log(
    JSON.stringify({
      encode_ms: round1(encodeMs),
      decode_ms: round1(decodeMs),
      ...(trainMs === undefined ? {} : { train_step_ms: round1(trainMs) }),
      ...info,
      ...extra,
    }),
  );
}
