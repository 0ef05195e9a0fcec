import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { LayerNorm, Linear, Module, Param, Sequential, normal } from '../../nn/index.js';
import { l2Normalize } from '../../quantizers/svq.js';
import type { GptcSize } from './config.js';

/**
 * GPTC, LARP's training-time prior (models/gptc.py): a small causal GPT over continuous 16-d codes. Its input is
 * the straight-through quantized sequence; its head regresses the next code, which the prior loss scores by
 * cosine similarity against the (detached) codebook. Names follow the reference: separate key/query/value
 * projections, ln1/ln2, mlp as Sequential(Linear, GELU, Linear, Dropout).
 */
class Gelu extends Module {
  forward(x: Tensor): Tensor { return E.gelu(x); }
}

class Dropout extends Module {
  constructor(readonly p: number) { super(); }
  forward(x: Tensor): Tensor { return E.dropout(x, this.p, this.training); }
}

export class CausalSelfAttention extends Module {
  key: Linear;
  query: Linear;
  value: Linear;
  proj: Linear;
  resid_drop: Dropout;
  constructor(dim: number, readonly heads: number, readonly attnDrop: number, residDrop: number) {
    super();
    this.key = new Linear(dim, dim);
    this.query = new Linear(dim, dim);
    this.value = new Linear(dim, dim);
    this.proj = new Linear(dim, dim);
    this.resid_drop = new Dropout(residDrop);
  }
  forward(x: Tensor): Tensor {
    const [b, t, c] = x.shape;
    const hd = c / this.heads;
    const split = (y: Tensor) => E.transpose(E.reshape(y, [b, t, this.heads, hd]), [0, 2, 1, 3]);
    const k = split(this.key.forward(x)), q = split(this.query.forward(x)), v = split(this.value.forward(x));
    const scores = E.add(E.mul(E.matmul(q, E.swapAxes(k)), 1 / Math.sqrt(hd)), E.maskBias('causal', t, t));
    // Attention dropout only while training (the reference also applies it in eval mode, a quirk not kept here).
    const att = E.dropout(E.softmax(scores, -1), this.attnDrop, this.training);
    const y = E.reshape(E.transpose(E.matmul(att, v), [0, 2, 1, 3]), [b, t, c]);
    return this.resid_drop.forward(this.proj.forward(y));
  }
}

export class GptcBlock extends Module {
  ln1: LayerNorm;
  ln2: LayerNorm;
  attn: CausalSelfAttention;
  mlp: Sequential;
  constructor(dim: number, heads: number, dropout: number) {
    super();
    this.ln1 = new LayerNorm(dim);
    this.ln2 = new LayerNorm(dim);
    this.attn = new CausalSelfAttention(dim, heads, dropout, dropout);
    this.mlp = new Sequential(new Linear(dim, 4 * dim), new Gelu(), new Linear(4 * dim, dim), new Dropout(dropout));
  }
  forward(x: Tensor): Tensor {
    const h = E.add(x, this.attn.forward(this.ln1.forward(x)));
    return E.add(h, this.mlp.forward(this.ln2.forward(h)));
  }
}

export class Gptc extends Module {
  input_proj: Linear;
  pos_emb: Param;
  drop: Dropout;
  blocks: GptcBlock[];
  ln_f: LayerNorm;
  head: Linear;
  constructor(inDim: number, size: GptcSize, maxSeqLen: number, dropout: number, readonly l2Normalized = true) {
    super();
    const d = size.n_embd;
    this.input_proj = new Linear(inDim, d);
    this.pos_emb = new Param(normal([1, maxSeqLen, d], 0.02));
    this.drop = new Dropout(dropout);
    this.blocks = Array.from({ length: size.n_layer }, () => new GptcBlock(d, size.n_head, dropout));
    this.ln_f = new LayerNorm(d);
    this.head = new Linear(d, inDim);
  }

  /** x [B, t, d_code] → next-code regression [B, t, d_code] (position i predicts code i+1). */
  forward(x: Tensor): Tensor {
    const t = x.shape[1];
    let h = this.drop.forward(E.add(this.input_proj.forward(x), E.narrow(this.pos_emb.value, 1, 0, t)));
    for (const blk of this.blocks) h = blk.forward(h);
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
