import * as E from '../src/engine/index.js';
import { LARP_L_LONG_AR, type LarpArConfig, larpArParameterCount } from '../src/generation/larp-ar/config.js';
import { LarpArDecoder } from '../src/generation/larp-ar/decoder.js';
import { LarpAr } from '../src/generation/larp-ar/model.js';
import { decodeAgreement } from '../src/generation/lm-decoder.js';
import { collectGarbage } from '../src/util/gc.js';
import { Rng } from '../src/util/rng.js';
import { guide, sampleRows } from '../src/util/sampling.js';
import { peakRssGb, resetPeakRss, stagePeakRssGb } from './timing.js';

/**
 * LARP-L-long-AR at its released size (llama-abs-LP: 30 × 1280, 20 heads, SwiGLU 3584, 8,192 codes, 101 classes;
 * 631,975,680 parameters), random N(0, 0.02) weights, as `bench/torch_larp_ar.py --bench` measures the reference:
 * one class-conditional clip with classifier-free guidance at 1.25 (the class and the null class as a batch of 2,
 * as the reference's ar/generate.py runs them), temperature 1, top-k 0, top-p 1, seeded draws:
 * - prefill_ms: the class position → K/V of every layer + the first logits;
 * - decode_tok_s: `--tokens N` (default 64) tokens one at a time from a KV cache sized for the whole clip (1,024
 *   positions); clip tokens per second (each step feeds both streams); median of 2 runs after a warm-up of 4
 *   tokens. A whole clip is 1,024 tokens: its time is about 1,024 / decode_tok_s (attention over a growing cache
 *   costs a little more late in the clip; `--tokens 1024` measures it);
 * - with int8 decode steps (LarpArDecoder precision 'int8', `--no-int8` skips them): the same rate, the time to
 *   quantize and compile, and the int8 logits against fp32 over 32 teacher-forced steps;
 * - peak RSS of each stage (VmHWM, reset between stages: fp32 decoding; compiling the int8 program, where the
 *   engine's quantizer holds the float32 graph and its int8 form at once; int8 decoding) and of the process.
 * Args: [threads] (default 2), --tokens=N, --small (a narrow model to check the script), --no-int8.
 */
export async function main(args: string[]): Promise<void> {
  const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
  const at = args.indexOf('--tokens'),
    eq = args.find((a) => a.startsWith('--tokens='));
  const N = eq ? Number(eq.slice(9)) : at >= 0 ? Number(args[at + 1]) : 64;
  const small = args.includes('--small');
  E.setRuntimeDefaults({ threads });
  E.seed(0);
  const cfg: LarpArConfig = small ? { ...LARP_L_LONG_AR, dim: 128, n_layer: 2, n_head: 2 } : LARP_L_LONG_AR;
  let t = performance.now();
  const model = LarpAr.random(cfg).eval();
  const params = larpArParameterCount(cfg),
    built = ((performance.now() - t) / 1000).toFixed(1);
  console.error(
    `LARP-L-long-AR${small ? ' (small)' : ''}: ${params} params built in ${built} s; ` +
      `${N} tokens with CFG 1.25; ${threads} threads; peak RSS ${peakRssGb()} GB`,
  );
  const V = cfg.vocab_size,
    CLASS = 62; // PlayingGuitar
  const range = { lo: 0, hi: V },
    capacity = cfg.max_seq_len;

  /** One guided clip's first `n` tokens: prefill time and tokens/s of the steps after it. */
  const clip = (dec: LarpArDecoder, n: number) => {
    const rng = new Rng(0);
    const t0 = performance.now();
    const { cache, logits: first } = dec.prefill({ classIds: Int32Array.of(CLASS, cfg.num_classes) }, capacity, range);
    const prefill = performance.now() - t0;
    let logits = first;
    const fed = new Int32Array(2);
    const t1 = performance.now();
    for (let s = 0; s < n; s++) {
      const row = guide(logits.slice(0, V), logits.subarray(V, 2 * V), 1.25);
      fed.fill(sampleRows(row, 1, V, rng, { temperature: 1 })[0]!);
      if (s + 1 < n) logits = dec.step(cache, fed, range);
    }
    return { prefillMs: prefill, tokS: (n - 1) / ((performance.now() - t1) / 1000) };
  };
  const rate = (dec: LarpArDecoder, label: string) => {
    clip(dec, 4);
    const runs = [clip(dec, N), clip(dec, N)];
    const tokS = (runs[0]!.tokS + runs[1]!.tokS) / 2,
      prefillMs = (runs[0]!.prefillMs + runs[1]!.prefillMs) / 2;
    console.error(
      `${label}: decode ${runs.map((r) => r.tokS.toFixed(2)).join(', ')} tok/s, prefill ${prefillMs.toFixed(0)} ms; ` +
        `stage peak RSS ${stagePeakRssGb()} GB`,
    );
    return { tokS, prefillMs };
  };

  collectGarbage();
  resetPeakRss();
  const dec = new LarpArDecoder(model);
  const fp32 = rate(dec, 'fp32');
  const fp32Peak = stagePeakRssGb();
  let int8: Record<string, number | string> = {};
  if (!args.includes('--no-int8')) {
    collectGarbage();
    resetPeakRss();
    const q = new LarpArDecoder(model, { precision: 'int8' });
    t = performance.now();
    const warm = q.prefill({ classIds: Int32Array.of(CLASS, cfg.num_classes) }, capacity, range);
    q.step(warm.cache, Int32Array.of(0, 0), range); // quantizes and compiles the int8 program
    const compileS = (performance.now() - t) / 1000;
    const compilePeak = stagePeakRssGb();
    collectGarbage();
    resetPeakRss();
    console.error(
      `int8 decode program quantized and compiled in ${compileS.toFixed(1)} s; peak RSS while compiling ` +
        `${compilePeak} GB`,
    );
    const r = rate(q, 'int8');
    const peak = stagePeakRssGb();
    const sr = new Rng(1);
    // both streams are fed the id drawn from the class stream's logits, as in sampling
    const pick = (l: Float32Array, rows: number) =>
      new Int32Array(rows).fill(sampleRows(l.slice(0, V), 1, V, sr, { temperature: 1 })[0]!);
    const agree = decodeAgreement(dec, q, { classIds: Int32Array.of(CLASS, cfg.num_classes) }, 32, range, pick);
    console.error(
      `int8 vs fp32 over ${agree.compared} steps: top-1 ${agree.top1}, max |Δlogit| ` +
        `${agree.maxAbsLogit.toExponential(2)}, KL mean ${agree.meanKl.toExponential(2)} nats`,
    );
    int8 = {
      decode_int8_tok_s: Math.round(r.tokS * 1000) / 1000,
      int8_compile_s: Math.round(compileS * 10) / 10,
      int8_compile_peak_rss_gb: compilePeak,
      int8_stage_peak_rss_gb: peak,
      int8_weights: E.backend().int8Kernels().weights,
      int8_top1: agree.top1,
      int8_mean_kl: Number(agree.meanKl.toPrecision(3)),
    };
    q.dispose();
  }
  dec.dispose();
  console.log(
    JSON.stringify({
      prefill_ms: Math.round(fp32.prefillMs * 10) / 10,
      decode_tok_s: Math.round(fp32.tokS * 1000) / 1000,
      clip_s_estimate: Math.round(1024 / fp32.tokS),
      fp32_stage_peak_rss_gb: fp32Peak,
      ...int8,
      tokens: N,
      threads,
      params,
      peak_rss_gb: peakRssGb(),
    }),
  );
}
