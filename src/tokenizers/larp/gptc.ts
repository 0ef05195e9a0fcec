import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { DecoderLm } from '../../nn/index.js';
import { l2Normalize } from '../../quantizers/svq.js';
import type { PriorSize } from './config.js';

/**
 * GPTC, LARP's training-time prior (models/gptc.py): a small causal GPT over continuous 16-d codes, as the decoder
 * shell (nn/decoder-lm.ts) with vector input and output. Its input is the straight-through quantized sequence; its
 * head regresses the next code, which the prior loss scores by cosine similarity against the (detached) codebook.
 * Names follow the reference: input_proj, pos_emb as one [1, maxSeqLen, dim] parameter, separate key/query/value
 * projections, ln1/ln2, mlp as Sequential(Linear, GELU, Linear, Dropout) (so its linears are mlp.0 and mlp.2), ln_f,
 * head. Attention dropout applies only while training (the reference also applies it in eval mode, a quirk not kept).
 */
export class Gptc extends DecoderLm {
  constructor(
    inDim: number,
    size: PriorSize,
    maxSeqLen: number,
    dropout: number,
    readonly l2Normalized = true,
  ) {
    super({
      vectorDim: inDim,
      dim: size.dim,
      layers: size.layers,
      heads: size.heads,
      hidden: 4 * size.dim,
      maxLength: maxSeqLen,
      mask: 'causal',
      positions: 'learned',
      positionTable: 'parameter',
      norm: 'layer',
      mlp: 'gelu',
      bias: true,
      headBias: true,
      dropout,
      attnDropout: dropout,
      names: { embedding: 'input_proj', positions: 'pos_emb', blocks: 'blocks', norm: 'ln_f', head: 'head' },
      blockNames: {
        parts: { ln1: 'norm1', ln2: 'norm2', attn: 'attn', mlp: 'mlp' },
        projections: { key: 'k', query: 'q', value: 'v', proj: 'o' },
        mlp: { 0: 'in', 2: 'out' },
      },
    });
  }

  /**
   * ar_predict: a prediction for every position of x [B, n, d]: position 0 is x₀ itself (never predicted), the
   * rest are the head's outputs for x₀…x_{n−2}; L2-normalised like the codebook. Also returns the raw head output.
   */
  arPredict(x: Tensor): { pred: Tensor; raw: Tensor } {
    const n = x.shape[1]!;
    const raw = this.forward({ vectors: E.narrow(x, 1, 0, n - 1) });
    const pred = E.concat([E.narrow(x, 1, 0, 1), raw], 1);
    return { pred: this.l2Normalized ? l2Normalize(pred) : pred, raw };
  }
}
