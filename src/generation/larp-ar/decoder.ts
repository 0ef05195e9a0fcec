import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import type { Mask } from '../../nn/index.js';
import { check } from '../../util/errors.js';
import { type DecoderOptions, LmDecoder, type PrefillPlan } from '../lm-decoder.js';
import type { LarpAr } from './model.js';

/**
 * KV-cache decoding for LARP's AR model (../lm-decoder.ts), as the reference's `ar/generate.py` prefills: the class's
 * embedding alone (class_cond; the null class for the guidance stream), or the condition ids under the causal mask
 * (frame prediction). Decode steps feed one token id per row.
 */
export type LarpArPrefill = { classIds: Int32Array } | { cond: Int32Array; batch: number };

export class LarpArDecoder extends LmDecoder<LarpArPrefill, LarpAr> {
  /**
   * fp32 steps read the weights as they are by default: at LARP-L-long-AR's shapes (1280 × 3840, 3584; one or two
   * rows a step) onnxruntime ran them faster than from transposed copies (1.33–1.41 against 1.00–1.05 tokens/s with
   * guidance, 1.66–2.09 against 1.49–1.79 without, on the shared 2-core AMD EPYC), and the copies would double the
   * 2.5 GB of weights held.
   */
  constructor(model: LarpAr, opts: DecoderOptions = {}) {
    super(model, { weights: 'as-is', ...opts });
  }

  protected plan(x: LarpArPrefill): PrefillPlan {
    const r = this.model.ref;
    if ('classIds' in x) {
      check(!r.frame_prediction, 'LARP AR: a frame-prediction model is conditioned on tokens, not classes');
      const B = x.classIds.length;
      for (const k of x.classIds)
        check(
          Number.isInteger(k) && k >= 0 && k <= r.num_classes,
          `LARP AR: class ${k} outside [0, ${r.num_classes}] (${r.num_classes} is the null class)`,
        );
      return { key: 'class', batch: B, length: 1, inputs: [E.concrete(x.classIds, [B], 'int32')] };
    }
    check(r.frame_prediction, 'LARP AR: a class-conditional model is conditioned on a class, not tokens');
    const B = x.batch,
      P = r.cls_token_num;
    check(x.cond.length === B * P, `LARP AR: the condition must be ${B} rows of ${P} ids, got ${x.cond.length} ids`);
    for (const k of x.cond)
      check(
        Number.isInteger(k) && k >= 0 && k <= r.vocab_size,
        `LARP AR: condition id ${k} outside [0, ${r.vocab_size}]`,
      );
    return { key: 'cond', batch: B, length: P, inputs: [E.concrete(x.cond, [B, P], 'int32')] };
  }

  protected prefillGraph(key: string, [x]: Tensor[]): { h: Tensor; mask: Mask } {
    const m = this.model;
    if (key === 'class') {
      const B = x!.shape[0]!;
      return { h: E.reshape(m.parts.classes!.forward(x!), [B, 1, m.cfg.dim]), mask: 'none' };
    }
    return { h: m.tokenEmbeddings(x!), mask: 'causal' };
  }
}
