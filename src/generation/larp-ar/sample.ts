import { check } from '../../util/errors.js';
import { Rng } from '../../util/rng.js';
import { guide, sampleRows, type SamplingOptions } from '../../util/sampling.js';
import { runSteps, type Steps } from '../../util/steps.js';
import type { SampleProgress } from '../sampler.js';
import type { Prefilled } from '../lm-decoder.js';
import { LarpArDecoder } from './decoder.js';
import type { LarpAr } from './model.js';

/**
 * Sampling from LARP's AR model as the reference's `ar/generate.py` does, with the KV cache: prefill on the
 * condition, then one token at a time.
 *
 * - Classifier-free guidance (class_cond only; the reference refuses it for frame prediction) runs the class and the
 *   null class as one batch and draws from u + s·(c − u) when the scale is above 1 (the reference guides only then).
 *   The schedule is the reference's `cfg_interval`: −1 guides every token; k ≥ 0 guides the first token and the next
 *   k + 1, then draws from the class's own logits (the null stream is still fed, as there).
 * - Then temperature, top-k (0 = off) and top-p (1 = off), and one draw per row (util/sampling; the reference's
 *   defaults are temperature 1, top-k 0, top-p 1).
 */
export interface LarpArSampleOptions extends SamplingOptions {
  /** class_cond: one class id per prompt. */
  classes?: number[];
  /** Frame prediction: per prompt, the condition's cls_token_num ids (a clip's tokens, then the separator). */
  conds?: Int32Array[];
  /** Rows per prompt (default 1). */
  samples?: number;
  seed?: number;
  /** Guidance scale (default 1: none). */
  cfgScale?: number;
  /** The reference's cfg_interval (default −1: every token guided). */
  cfgInterval?: number;
  /** Tokens to draw (default max_seq_len, a whole clip). */
  tokens?: number;
  onProgress?: (p: SampleProgress) => void;
  /** A decoder to reuse (its compiled programs); default: a new one per call. */
  decoder?: LarpArDecoder;
}

/** Draws tokens for every prompt × sample; ids row-major [prompts·samples, tokens]. */
export function sampleLarpAr(model: LarpAr, o: LarpArSampleOptions): Int32Array {
  return runSteps(sampleLarpArSteps(model, o));
}

/** `sampleLarpAr` as steps: yields after every drawn token (util/steps). */
export function* sampleLarpArSteps(model: LarpAr, o: LarpArSampleOptions): Steps<Int32Array> {
  const r = model.ref,
    V = r.vocab_size;
  const samples = o.samples ?? 1,
    scale = o.cfgScale ?? 1,
    interval = o.cfgInterval ?? -1,
    N = o.tokens ?? r.max_seq_len;
  check(Number.isInteger(samples) && samples > 0, `samples must be a positive integer, got ${samples}`);
  check(Number.isFinite(scale) && scale >= 1, `the guidance scale must be at least 1 (1 = none), got ${scale}`);
  check(Number.isInteger(interval), `cfgInterval must be an integer (−1: every token), got ${interval}`);
  check(
    Number.isInteger(N) && N >= 1 && N <= r.max_seq_len,
    `tokens must be an integer in [1, ${r.max_seq_len}], got ${N}`,
  );
  const guided = scale > 1;
  let prompts: number;
  if (r.frame_prediction) {
    check(o.conds !== undefined && o.classes === undefined, 'a frame-prediction model takes conditions, not classes');
    check(!guided, 'a frame-prediction model samples without guidance (the reference requires scale 1)');
    prompts = o.conds.length;
  } else {
    check(o.classes !== undefined && o.conds === undefined, 'a class-conditional model takes classes');
    prompts = o.classes.length;
  }
  check(prompts > 0, 'no prompt to sample for');
  const R = prompts * samples,
    B = guided ? 2 * R : R;
  const dec = o.decoder ?? new LarpArDecoder(model);
  const range = { lo: 0, hi: V };
  const rng = new Rng(o.seed ?? 0);
  const out = new Int32Array(R * N);
  try {
    const t0 = performance.now();
    let prefilled: Prefilled;
    if (r.frame_prediction) {
      const P = r.cls_token_num,
        cond = new Int32Array(B * P);
      for (let row = 0; row < R; row++) cond.set(o.conds![Math.floor(row / samples)]!, row * P);
      prefilled = dec.prefill({ cond, batch: B }, P + N - 1, range);
    } else {
      const ids = Int32Array.from({ length: B }, (_, row) =>
        row < R ? o.classes![Math.floor(row / samples)]! : r.num_classes,
      );
      prefilled = dec.prefill({ classIds: ids }, 1 + N - 1, range);
    }
    const { cache } = prefilled;
    let logits = prefilled.logits;
    const fed = new Int32Array(B);
    for (let n = 0; n < N; n++) {
      // token n: the prefill's draw is always guided, decode step i = n − 1 while i ≤ cfg_interval (or always)
      const guideNow = guided && (interval < 0 || n - 1 <= interval);
      const rows = guideNow
        ? guide(logits.slice(0, R * V), logits.subarray(R * V, 2 * R * V), scale)
        : logits.slice(0, R * V);
      const drawn = sampleRows(rows, R, V, rng, o);
      for (let row = 0; row < B; row++) fed[row] = drawn[row % R]!;
      for (let row = 0; row < R; row++) out[row * N + n] = drawn[row]!;
      if (n + 1 < N) logits = dec.step(cache, fed, range);
      o.onProgress?.({ done: n + 1, total: N, tokensPerSecond: ((n + 1) * R) / ((performance.now() - t0) / 1000) });
      yield;
    }
    return out;
  } finally {
    if (!o.decoder) dec.dispose();
  }
}
