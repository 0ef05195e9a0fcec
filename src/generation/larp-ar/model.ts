import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { buildForLoading, DecoderLm, type DecoderLmConfig, loadingWeights, normal, Param } from '../../nn/index.js';
import { sincos1d } from '../../tokenizers/larp/sincos.js';
import { VtokError, check } from '../../util/errors.js';
import { type LarpArConfig, larpArHidden, larpArPositions } from './config.js';

/**
 * LARP's autoregressive generator (hywang66/LARP `models/larp_ar.py`, `LARP_AR`) as an instance of the decoder shell
 * (nn/decoder-lm.ts), for inference: a Llama-style decoder (pre-norm RMSNorm, fused-QKV attention without biases,
 * SwiGLU, learned absolute positions `abs_pe` of [1, max_seq_len + cls_token_num − 1, dim], untied head `output`).
 *
 * - class_cond: position 0 is the class's row of `cls_embedding.embedding_table` (num_classes + 1 rows, the last the
 *   null class of classifier-free guidance), then the tokens; position j predicts token j.
 * - frame_prediction: the condition is cls_token_num ids (a clip's tokens and the separator id vocab_size) embedded by
 *   the token table (vocab_size + 1 rows), then the tokens; the logits from position cls_token_num − 1 on.
 *
 * Parameter names are the reference's state_dict names, so its weights load as they are. Dropouts are not built
 * (inference only). The reference zero-initialises the head for training from scratch; here every Linear and
 * embedding is N(0, initializer_range), so a model with random weights (for timing) gives non-uniform logits.
 */
export function larpArShellConfig(c: LarpArConfig): DecoderLmConfig {
  return {
    vocabSize: c.vocab_size,
    inputVocabSize: c.vocab_size + (c.frame_prediction ? 1 : 0),
    dim: c.dim,
    layers: c.n_layer,
    heads: c.n_head,
    hidden: larpArHidden(c),
    maxLength: larpArPositions(c),
    mask: 'causal',
    positions: 'learned',
    positionTable: 'parameter',
    norm: 'rms',
    normEps: c.norm_eps,
    mlp: 'swiglu',
    bias: false,
    classes: c.frame_prediction ? null : c.num_classes,
    names: {
      embedding: 'tok_embeddings',
      classes: 'cls_embedding.embedding_table',
      positions: 'abs_pe',
      blocks: 'layers',
      norm: 'norm',
      head: 'output',
    },
    blockNames: {
      parts: { attention_norm: 'norm1', attention: 'attn', ffn_norm: 'norm2', feed_forward: 'mlp' },
      projections: { wqkv: 'qkv', wo: 'o' },
    },
  };
}

export class LarpAr extends DecoderLm {
  constructor(readonly ref: LarpArConfig) {
    super(larpArShellConfig(ref));
    if (!loadingWeights()) this.initialize();
  }

  /** The reference's random initialisation (see above): N(0, initializer_range), or sin-cos positions if fixed. */
  initialize(): this {
    const ref = this.ref;
    this.initNormal(ref.initializer_range);
    const pe = this.parts.positions;
    if (pe instanceof Param) {
      const n = larpArPositions(ref);
      pe.value = ref.use_fixed_pe
        ? E.concrete(Float32Array.from(sincos1d(ref.dim, n)), [1, n, ref.dim], 'float32')
        : normal([1, n, ref.dim], 0.02);
    }
    return this;
  }

  /**
   * A model of random weights drawn once (the constructor draws the layers' defaults first, then `initialize`
   * draws again: at 632 M parameters each pass takes about a minute).
   */
  static random(ref: LarpArConfig): LarpAr {
    return buildForLoading(() => new LarpAr(ref)).initialize();
  }

  /** Condition positions: 1 (the class) or the frame-prediction condition's length. */
  get condLength(): number {
    return this.ref.cls_token_num;
  }

  /**
   * The reference's eval-mode `model(idx, cond)`: idx [B, n] token ids, cond the class ids [B] (class_cond) or the
   * condition ids [B, cls_token_num] (frame prediction). Logits [B, n + 1, vocab]: position j predicts token j.
   */
  logitsFor(idx: Tensor, cond: Tensor): Tensor {
    const r = this.ref,
      B = idx.shape[0]!;
    if (!r.frame_prediction) {
      check(cond.shape.join() === String(B), `LARP AR: class ids must be [${B}], got [${cond.shape}]`);
      return this.forward({ ids: idx, classIds: cond });
    }
    if (cond.rank !== 2 || cond.shape[0] !== B || cond.shape[1] !== r.cls_token_num) {
      throw new VtokError(`LARP AR: the condition must be [${B}, ${r.cls_token_num}] ids, got [${cond.shape}]`);
    }
    const ids = E.concat([E.cast(cond, 'int64'), E.cast(idx, 'int64')], 1);
    const logits = this.forward({ ids });
    return E.narrow(logits, 1, r.cls_token_num - 1, logits.shape[1]! - r.cls_token_num + 1);
  }
}
