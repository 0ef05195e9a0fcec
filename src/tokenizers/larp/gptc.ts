import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { LayerNorm, Linear, Module, Param, TransformerBlock, normal } from '../../nn/index.js';
import { l2Normalize } from '../../quantizers/svq.js';
import type { GptcSize } from './config.js';

/**
 * GPTC, LARP's training-time prior (models/gptc.py): a small causal GPT over continuous 16-d codes. Its input is
 * the straight-through quantized sequence; its head regresses the next code, which the prior loss scores by
 * cosine similarity against the (detached) codebook. Names follow the reference: separate key/query/value
 * projections, ln1/ln2, mlp as Sequential(Linear, GELU, Linear, Dropout) (so its linears are mlp.0 and mlp.2).
 * Attention dropout applies only while training (the reference also applies it in eval mode, a quirk not kept).
 */
class Dropout extends Module {
  constructor(readonly p: number) { super(); }
  forward(x: Tensor): Tensor { return E.dropout(x, this.p, this.training); }
}

export const gptcBlock = (dim: number, heads: number, dropout: number): TransformerBlock =>
  new TransformerBlock({
    dim, heads, norm: 'layer', dropout,
    names: { ln1: 'norm1', ln2: 'norm2', attn: 'attn', mlp: 'mlp' },
    attention: { projections: { key: 'k', query: 'q', value: 'v', proj: 'o' }, attnDropout: dropout },
    mlp: { kind: 'gelu', hidden: 4 * dim, names: { 0: 'in', 2: 'out' } },
  });

export class Gptc extends Module {
  input_proj: Linear;
  pos_emb: Param;
  drop: Dropout;
  blocks: TransformerBlock[];
  ln_f: LayerNorm;
  head: Linear;
  constructor(inDim: number, size: GptcSize, maxSeqLen: number, dropout: number, readonly l2Normalized = true) {
    super();
    const d = size.n_embd;
    this.input_proj = new Linear(inDim, d);
    this.pos_emb = new Param(normal([1, maxSeqLen, d], 0.02));
    this.drop = new Dropout(dropout);
    this.blocks = Array.from({ length: size.n_layer }, () => gptcBlock(d, size.n_head, dropout));
    this.ln_f = new LayerNorm(d);
    this.head = new Linear(d, inDim);
  }

  /** x [B, t, d_code] → next-code regression [B, t, d_code] (position i predicts code i+1). */
  forward(x: Tensor): Tensor {
    const t = x.shape[1];
    let h = this.drop.forward(E.add(this.input_proj.forward(x), E.narrow(this.pos_emb.value, 1, 0, t)));
    for (const blk of this.blocks) h = blk.forward(h, { mask: 'causal' });
    return this.head.forward(this.ln_f.forward(h));
  }

  /**
   * ar_predict: a prediction for every position of x [B, n, d]: position 0 is x₀ itself (never predicted), the
   * rest are the head's outputs for x₀…x_{n−2}; L2-normalised like the codebook. Also returns the raw head output.
   */
  arPredict(x: Tensor): { pred: Tensor; raw: Tensor } {
    const n = x.shape[1];
    const raw = this.forward(E.narrow(x, 1, 0, n - 1));
    const pred = E.concat([E.narrow(x, 1, 0, 1), raw], 1);
    return { pred: this.l2Normalized ? l2Normalize(pred) : pred, raw };
  }
}
