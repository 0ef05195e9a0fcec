import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { Conv3d, GroupNorm } from './layers.js';
import { Module } from './module.js';
import { normal } from './init.js';

/**
 * 3D PatchGAN discriminator (the NLayerDiscriminator3D of Open-Sora-Plan that Open-MAGVIT2's video loss uses):
 * conv 3×3×3 stride 2 → LeakyReLU 0.2, then `layers` − 1 strided blocks doubling the width (capped at 8×), one
 * stride-1 block, and a 1-channel conv giving a logit per space-time patch. GroupNorm replaces BatchNorm3d, which
 * is unreliable at the batch sizes a CPU trains with. Weights N(0, 0.02) as pix2pix's weights_init.
 */
export interface PatchDiscriminatorConfig {
  channels: number;
  ndf: number;
  layers: number;
}

const leaky = (x: Tensor) => E.where(E.greater(x, 0), x, E.mul(x, 0.2));

class Block extends Module {
  conv: Conv3d;
  norm: GroupNorm;
  constructor(cin: number, cout: number, stride: number[]) {
    super();
    this.conv = new Conv3d(cin, cout, 3, { stride, padding: 1, bias: false });
    this.norm = new GroupNorm(Math.min(32, cout / 4), cout);
  }
  forward(x: Tensor): Tensor {
    return leaky(this.norm.forward(this.conv.forward(x)));
  }
}

export class PatchDiscriminator3D extends Module {
  conv_in: Conv3d;
  blocks: Block[] = [];
  conv_out: Conv3d;
  constructor(readonly cfg: PatchDiscriminatorConfig) {
    super();
    this.conv_in = new Conv3d(cfg.channels, cfg.ndf, 3, { stride: [2, 2, 2], padding: 1 });
    let mult = 1;
    for (let n = 1; n < cfg.layers; n++) {
      const next = Math.min(2 ** n, 8);
      this.blocks.push(new Block(cfg.ndf * mult, cfg.ndf * next, [2, 2, 2]));
      mult = next;
    }
    const last = Math.min(2 ** cfg.layers, 8);
    this.blocks.push(new Block(cfg.ndf * mult, cfg.ndf * last, [1, 1, 1]));
    this.conv_out = new Conv3d(cfg.ndf * last, 1, 3, { padding: 1 });
    for (const [name, p] of this.namedParams()) {
      if (name.endsWith('conv.weight') || name.endsWith('conv_in.weight') || name.endsWith('conv_out.weight'))
        p.value = normal(p.shape, 0.02);
    }
  }
  /** Video N×C×T×H×W → patch logits N×1×T'×H'×W'. */
  forward(x: Tensor): Tensor {
    let h = leaky(this.conv_in.forward(x));
    for (const b of this.blocks) h = b.forward(h);
    return this.conv_out.forward(h);
  }
}
