import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { keyPaddingMask, type Mask } from '../../nn/index.js';
import { check } from '../../util/errors.js';
import { type DecoderOptions, LmDecoder, type PrefillPlan } from '../lm-decoder.js';
import type { PrefixLm } from './model.js';

/**
 * KV-cache decoding for the prefix LM (../lm-decoder.ts): its prefill runs the whole prefix bidirectionally, with
 * the text embeddings in their slot and invalid text positions hidden from every key.
 */
export interface PrefillInput {
  /** Prefix ids [B, P] (the text slot's ids are ignored). */
  ids: Int32Array;
  batch: number;
  /** Text embeddings [B, Lt, textDim] for the slot at textStart, and which text positions are valid ([B, Lt]). */
  text?: { embeddings: Float32Array; length: number; start: number; valid?: Uint8Array };
}

export class PrefixLmDecoder extends LmDecoder<PrefillInput, PrefixLm> {
  constructor(model: PrefixLm, opts: DecoderOptions = {}) {
    super(model, opts);
  }

  protected plan(x: PrefillInput): PrefillPlan {
    const m = this.model,
      B = x.batch,
      P = x.ids.length / B;
    check(Number.isInteger(P) && P > 0, `prefill: ${x.ids.length} ids do not form ${B} rows`);
    const t = x.text;
    const inputs = [E.concrete(x.ids, [B, P], 'int32')];
    let visible: Uint8Array | undefined;
    if (t) {
      check(m.cfg.textDim !== null, 'prefill: this model takes no text');
      inputs.push(E.concrete(t.embeddings, [B, t.length, m.cfg.textDim!], 'float32'));
      if (t.valid) {
        inputs.push(E.concrete(t.valid, [B, t.length], 'bool'));
        visible = new Uint8Array(B * P).fill(1);
        for (let b = 0; b < B; b++) visible.set(t.valid.subarray(b * t.length, (b + 1) * t.length), b * P + t.start);
      }
    }
    return { key: t ? `${t.start}:${t.valid ? 1 : 0}` : '-', batch: B, length: P, inputs, visible };
  }

  protected prefillGraph(key: string, [ids, text, textValid]: Tensor[]): { h: Tensor; mask: Mask } {
    const m = this.model;
    const [b, S] = ids!.shape as [number, number];
    const input = {
      ids: ids!,
      prefixLength: E.full([b], S, 'int64'),
      text,
      textStart: key === '-' ? undefined : Number(key.split(':')[0]),
      textValid,
    };
    const valid = m.keyValid(input, S);
    return { h: m.embed(input), mask: valid ? keyPaddingMask(valid) : 'none' };
  }
}
