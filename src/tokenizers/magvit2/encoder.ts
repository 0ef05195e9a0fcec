import type { Tensor } from '../../engine/core.js';
import type { GroupNorm } from '../../nn/index.js';
import { Module } from '../../nn/index.js';
import type { Magvit2Config } from './config.js';
import { type Dims, groupNorm, type Layer, makeConv, ResBlock, swish, normSpec } from './layers.js';

/**
 * The encoder (Open-MAGVIT2 Encoder): conv_in → per level, num_res_blocks ResBlocks then a strided conv (every
 * level but the last) → mid ResBlocks → GN → swish → 1×1 conv to the z_channels LFQ bits. Video downsampling is
 * (1,2,2) where ch_mult[i] == 1 and (2,2,2) otherwise, so temporal compression comes in the later levels; with
 * the causal stride-2 conv a clip of 1 + 2k frames becomes 1 + k.
 */
export class EncoderLevel extends Module {
  block: ResBlock[] = [];
  downsample: (Module & Layer) | null = null;
}

export class Encoder extends Module {
  conv_in: Module & Layer;
  down: EncoderLevel[] = [];
  mid_block: ResBlock[] = [];
  norm_out: GroupNorm | null;
  conv_out: Module & Layer;

  constructor(cfg: Magvit2Config) {
    super();
    const dims: Dims = cfg.kind === 'video' ? 3 : 2;
    const norm = normSpec(cfg);
    const { ch, ch_mult: mult, num_res_blocks: nres, z_channels: zc, in_channels: cin } = cfg.ddconfig;
    this.conv_in = makeConv(dims, cin, ch, 3, { bias: false });
    const inMult = [1, ...mult];
    let width = ch;
    mult.forEach((m, i) => {
      const level = new EncoderLevel();
      let win = ch * inMult[i]!;
      width = ch * m;
      for (let j = 0; j < nres; j++) {
        level.block.push(new ResBlock(dims, win, width, norm));
        win = width;
      }
      if (i < mult.length - 1) {
        const stride = dims === 3 ? (m === 1 ? [1, 2, 2] : [2, 2, 2]) : [2, 2];
        level.downsample = makeConv(dims, width, width, 3, { stride });
      }
      this.down.push(level);
    });
    for (let j = 0; j < nres; j++) this.mid_block.push(new ResBlock(dims, width, width, norm));
    this.norm_out = cfg.out_norm === false ? null : groupNorm(norm, width);
    this.conv_out = makeConv(dims, width, zc, 1);
  }

  forward(x: Tensor): Tensor {
    let h = this.conv_in.forward(x);
    for (const level of this.down) {
      for (const b of level.block) h = b.forward(h);
      if (level.downsample) h = level.downsample.forward(h);
    }
    for (const b of this.mid_block) h = b.forward(h);
    return this.conv_out.forward(swish(this.norm_out ? this.norm_out.forward(h) : h));
  }
}
