import type { Tensor } from '../../engine/core.js';
import type { GroupNorm } from '../../nn/index.js';
import { Module } from '../../nn/index.js';
import type { Magvit2Config } from './config.js';
import {
  AdaptiveGroupNorm,
  type Dims,
  groupNorm,
  type Layer,
  makeConv,
  ResBlock,
  swish,
  Upsampler,
  normSpec,
} from './layers.js';

/**
 * The decoder (Open-MAGVIT2 Decoder), coarse to fine: conv_in → mid ResBlocks → per level (last to first)
 * adaptive GroupNorm conditioned on the quantized latent zq → num_res_blocks ResBlocks → depth-to-space
 * Upsampler (every level but the first) → GN → swish → conv3 to pixels. Video upsampling is (1,2,2) where
 * ch_mult[i−1] == 1 and (2,2,2) otherwise, mirroring the encoder; images upsample ×2 at every level.
 * `up` and `adaptive` are indexed by level (fine = 0) like the reference, though run in reverse.
 */
export class DecoderLevel extends Module {
  block: ResBlock[] = [];
  upsample: Upsampler | null = null;
}

export class Decoder extends Module {
  conv_in: Module & Layer;
  mid_block: ResBlock[] = [];
  up: DecoderLevel[];
  adaptive: AdaptiveGroupNorm[];
  norm_out: GroupNorm | null;
  conv_out: Module & Layer;

  constructor(cfg: Magvit2Config) {
    super();
    const dims: Dims = cfg.kind === 'video' ? 3 : 2;
    const norm = normSpec(cfg);
    const { ch, ch_mult: mult, num_res_blocks: nres, z_channels: zc, out_ch: cout } = cfg.ddconfig;
    let width = ch * mult[mult.length - 1]!;
    this.conv_in = makeConv(dims, zc, width, 3);
    for (let j = 0; j < nres; j++) this.mid_block.push(new ResBlock(dims, width, width, norm));
    const up: DecoderLevel[] = [],
      adaptive: AdaptiveGroupNorm[] = [];
    for (let i = mult.length - 1; i >= 0; i--) {
      const level = new DecoderLevel();
      adaptive[i] = new AdaptiveGroupNorm(zc, width, norm);
      const wout = ch * mult[i]!;
      for (let j = 0; j < nres; j++) {
        level.block.push(new ResBlock(dims, width, wout, norm));
        width = wout;
      }
      if (i > 0)
        level.upsample = new Upsampler(dims, width, dims === 3 ? (mult[i - 1] === 1 ? [1, 2, 2] : [2, 2, 2]) : [2, 2]);
      up[i] = level;
    }
    this.up = up;
    this.adaptive = adaptive;
    this.norm_out = cfg.out_norm === false ? null : groupNorm(norm, width);
    this.conv_out = makeConv(dims, width, cout, 3);
  }

  forward(zq: Tensor): Tensor {
    let h = this.conv_in.forward(zq);
    for (const b of this.mid_block) h = b.forward(h);
    for (let i = this.up.length - 1; i >= 0; i--) {
      h = this.adaptive[i]!.forward(h, zq);
      for (const b of this.up[i]!.block) h = b.forward(h);
      if (this.up[i]!.upsample) h = this.up[i]!.upsample!.forward(h);
    }
    return this.conv_out.forward(swish(this.norm_out ? this.norm_out.forward(h) : h));
  }
}
