import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { decodeAgreement } from '../src/generation/lm-decoder.js';
import { PrefixLmDecoder } from '../src/generation/prefix-lm/decoder.js';
import { sampleRows } from '../src/util/sampling.js';
import { benchPrefixLmConfig, PrefixLm, prefixLmLoss, type PrefixLmConfig } from '../src/generation/prefix-lm/model.js';
import { AdamW, constantLr, TrainStep } from '../src/nn/train.js';
import { collectGarbage } from '../src/util/gc.js';
import { Rng } from '../src/util/rng.js';
import { peakRssGb, resetPeakRss, round1, stagePeakRssGb, timeMs } from './timing.js';

/**
 * The bench prefix LM (../../shared/bench/README.md, torch_lm.py --bench): 266,256 ids (2^18 visual + 4×1024 audio
 * + 16 special), 12 × 768, SwiGLU 2048, rotary, RMSNorm, 64 text vectors of 2048 through text_proj. Measured as
 * torch_lm.py measures:
 * - prefill: batch 1, the 326-position prefix → every layer's K/V + logits over the visual range at the last
 *   position; median of 5 after one warm-up;
 * - decode: 256 visual ids one at a time from the KV cache (logits over [0, 2^18) only, temperature 1, top-k 256,
 *   seeded); tokens/s, median of 2 after one warm-up;
 * - train step: batch 2, prefix 326 + 512 output ids, cross-entropy over the whole vocabulary on the output
 *   positions, backward, AdamW (lr 1e-4, betas 0.9/0.95, eps 1e-8, weight decay 0.1); median of 3 after one warm-up.
 * Args: [threads] (default 2), --small (a narrow model to check the script), --no-train, --train-only (no prefill or
 * decode), --int8 (also decode with
 * int8 weights, `PrefixLmDecoder` precision 'int8': its rate, and its logits against float32 ones over a sequence of
 * AGREE_STEPS decoded tokens, both decoders fed the same float32-sampled ids).
 */
const AGREE_STEPS = 128;

export async function main(args: string[]): Promise<void> {
  const threads = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
  const small = args.includes('--small');
  E.setRuntimeDefaults({ threads });
  E.seed(0);
  const VISUAL = 2 ** 18,
    SPECIAL = VISUAL + 4 * 1024;
  const cfg: PrefixLmConfig = small
    ? { ...benchPrefixLmConfig(), dim: 64, layers: 2, heads: 4, hidden: 128 }
    : benchPrefixLmConfig();
  const model = new PrefixLm(cfg).eval();
  const params = model.parameterCount();
  const [BOS, TASK, BOV_I, EOV_I, RES, BOV_O] = [0, 1, 2, 3, 4, 5].map((i) => SPECIAL + i);
  const TEXT = 64,
    TEXT_DIM = cfg.textDim!,
    IMAGE = 256;
  const rng = new Rng(0);
  const prompt = (B: number) => {
    const P = 2 + TEXT + 1 + IMAGE + 1 + 2;
    const ids = new Int32Array(B * P);
    const image = rng.randint(B * IMAGE, 0, VISUAL);
    for (let b = 0; b < B; b++) {
      const row = [
        BOS,
        TASK,
        ...new Array(TEXT).fill(0),
        BOV_I,
        ...image.subarray(b * IMAGE, (b + 1) * IMAGE),
        EOV_I,
        RES,
        BOV_O,
      ];
      ids.set(row, b * P);
    }
    return { ids, P, text: rng.normal(B * TEXT * TEXT_DIM) };
  };
  const { ids, P, text } = prompt(1);
  console.error(`bench prefix LM${small ? ' (small)' : ''}: ${params} params, prefix ${P}, ${threads} threads`);

  const trainOnly = args.includes('--train-only');
  let prefillMs: number | undefined, decodeTokS: number | undefined;
  let int8: Record<string, number | string> = {};
  if (!trainOnly) {
    const dec = new PrefixLmDecoder(model);
    const visual = { lo: 0, hi: VISUAL };
    const STEPS = 256;
    const capacity = P + STEPS;
    const prefill = () =>
      dec.prefill({ ids, batch: 1, text: { embeddings: text, length: TEXT, start: 2 } }, capacity, visual);
    prefillMs = timeMs(prefill, 1, 5, 'prefill');
    console.error(`prefill median ${prefillMs.toFixed(1)} ms; peak RSS ${peakRssGb()} GB`);

    const decodeRate = (d: PrefixLmDecoder) => {
      const sr = new Rng(0);
      let { cache, logits } = prefill();
      const t = performance.now();
      const next = new Int32Array(1);
      for (let s = 0; s < STEPS; s++) {
        next[0] = sampleRows(logits, 1, VISUAL, sr, { temperature: 1, topK: 256 })[0]!;
        logits = d.step(cache, next, visual);
      }
      return STEPS / ((performance.now() - t) / 1000);
    };
    // median of two after one warm-up, as Python's statistics.median takes it
    const medianRate = (d: PrefixLmDecoder, label: string) => {
      decodeRate(d);
      const rates = [decodeRate(d), decodeRate(d)];
      console.error(
        `decode ${label} ${rates.map((r) => r.toFixed(2)).join(', ')} tok/s; ` +
          `programs compiled: ${d.compiledPrograms}; peak RSS ${peakRssGb()} GB`,
      );
      return (rates[0]! + rates[1]!) / 2;
    };
    decodeTokS = medianRate(dec, 'fp32');
    if (args.includes('--int8')) {
      const q = new PrefixLmDecoder(model, { precision: 'int8' });
      const t = performance.now();
      q.step(prefill().cache, Int32Array.of(0), visual); // compiles and quantizes the int8 program
      console.error(`int8 decode program quantized and compiled in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      const rate = medianRate(q, 'int8');
      const sr = new Rng(1);
      const agree = decodeAgreement(
        dec,
        q,
        { ids, batch: 1, text: { embeddings: text, length: TEXT, start: 2 } },
        AGREE_STEPS,
        visual,
        (l, rows, width) => sampleRows(l, rows, width, sr, { temperature: 1, topK: 256 }),
      );
      console.error(
        `int8 vs fp32 over ${agree.compared} decoded tokens: top-1 agreement ${agree.top1}, ` +
          `max |Δlogit| ${agree.maxAbsLogit.toExponential(2)}, ` +
          `KL mean ${agree.meanKl.toExponential(2)} max ${agree.maxKl.toExponential(2)} nats`,
      );
      int8 = {
        decode_int8_tok_s: Math.round(rate * 1000) / 1000,
        int8_weights: E.backend().int8Kernels().weights,
        int8_top1: agree.top1,
        int8_max_abs_logit: Number(agree.maxAbsLogit.toPrecision(3)),
        int8_mean_kl: Number(agree.meanKl.toPrecision(3)),
        int8_max_kl: Number(agree.maxKl.toPrecision(3)),
      };
      q.dispose();
    }
    dec.dispose();
  }

  let trainMs: number | undefined, trainPeak: number | undefined;
  if (!args.includes('--no-train')) {
    model.train();
    collectGarbage();
    resetPeakRss();
    const B = 2,
      OUT = 512;
    const pb = prompt(B),
      S = pb.P + OUT;
    const all = new Int32Array(B * S);
    const out = rng.randint(B * OUT, 0, VISUAL);
    for (let b = 0; b < B; b++) {
      all.set(pb.ids.subarray(b * pb.P, (b + 1) * pb.P), b * S);
      all.set(out.subarray(b * OUT, (b + 1) * OUT), b * S + pb.P);
    }
    const batch = {
      ids: E.concrete(all, [B, S], 'int32'),
      prefixLength: E.concrete(Int32Array.of(pb.P, pb.P), [B], 'int32'),
      text: E.concrete(pb.text, [B, TEXT, TEXT_DIM], 'float32'),
    };
    const step = new TrainStep(
      model,
      (x: { ids: Tensor; prefixLength: Tensor; text: Tensor }) =>
        prefixLmLoss(model, { ...x, textStart: 2 }, { scoreFrom: pb.P - 1 }),
      {
        optimizer: new AdamW({ betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }),
        schedule: constantLr(1e-4),
      },
    );
    trainMs = timeMs(() => step.run(batch), 1, 3, 'train step');
    trainPeak = stagePeakRssGb();
    console.error(`train step median ${trainMs.toFixed(1)} ms; peak RSS of the training steps ${trainPeak} GB`);
  }
  console.log(
    JSON.stringify({
      ...(prefillMs === undefined || decodeTokS === undefined
        ? {}
        : { prefill_ms: round1(prefillMs), decode_tok_s: Math.round(decodeTokS * 1000) / 1000 }),
      ...int8,
      ...(trainMs === undefined ? {} : { train_step_ms: round1(trainMs), train_peak_rss_gb: trainPeak }),
      threads,
      params,
      peak_rss_gb: peakRssGb(),
      cpu: 'AMD EPYC (AVX-512, VNNI), 2 cores, shared',
    }),
  );
}
