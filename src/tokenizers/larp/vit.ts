import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import {
  Conv3d,
  LayerNorm,
  Linear,
  Module,
  type MultiHeadAttention,
  type Mlp,
  TransformerBlock,
} from '../../nn/index.js';

/**
 * The ViT pieces LARP's tokenizer is built from, with the reference's names: PatchEmbed3D (x_embedder.proj),
 * timm's Block (pre-LN, qkv without bias, exact GELU, MLP ratio 4, LayerNorm eps 1e-5), the "parallel"
 * transformer that runs self-attention over [context ‖ queries] and keeps the query positions, and the output
 * head (LayerNorm eps 1e-6 + Linear).
 */
export class PatchEmbed3D extends Module {
  proj: InstanceType<typeof Conv3d>;
  constructor(patch: [number, number, number], inChannels: number, dim: number) {
    super();
    this.proj = new Conv3d(inChannels, dim, patch, { stride: patch });
  }
  /** N×C×T×H×W → tokens [N, t·h·w, D] in (t, h, w) row-major order. */
  forward(x: Tensor): Tensor {
    const y = this.proj.forward(x);
    const [b, d] = y.shape as [number, number];
    return E.swapAxes(E.reshape(y, [b, d, -1]), 1, 2);
  }
}

export class Block extends TransformerBlock {
  declare readonly norm1: LayerNorm;
  declare readonly attn: MultiHeadAttention & { qkv: Linear; proj: Linear };
  declare readonly norm2: LayerNorm;
  declare readonly mlp: Mlp;
  constructor(dim: number, heads: number, mlpRatio = 4) {
    super({
      dim,
      heads,
      norm: 'layer',
      normEps: 1e-5,
      attention: { qkvBias: false },
      mlp: { kind: 'gelu', hidden: Math.floor(dim * mlpRatio) },
    });
  }
}

/** Bidirectional attention over [context ‖ query]; returns the last len(query) positions (no final norm). */
export class TransformerEncoderParallel extends Module {
  blocks: Block[];
  constructor(dim: number, depth: number, heads: number) {
    super();
    this.blocks = Array.from({ length: depth }, () => new Block(dim, heads));
  }
  forward(context: Tensor, query: Tensor): Tensor {
    let h = E.concat([context, query], 1);
    for (const blk of this.blocks) h = blk.forward(h);
    const nq = query.shape[1]!;
    return E.narrow(h, 1, h.shape[1]! - nq, nq);
  }
}

export class OutputLayer extends Module {
  norm_final: LayerNorm;
  linear: Linear;
  constructor(dim: number, outDim: number) {
    super();
    this.norm_final = new LayerNorm(dim, 1e-6);
    this.linear = new Linear(dim, outDim);
  }
  forward(x: Tensor): Tensor {
    return this.linear.forward(this.norm_final.forward(x));
  }
}
