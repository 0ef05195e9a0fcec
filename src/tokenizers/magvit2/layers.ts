import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { Conv2d, Conv3d, GroupNorm, Linear, Module } from '../../nn/index.js';

/**
 * The building blocks of Open-MAGVIT2's tokenizer (improved_video_model.py for video, improved_model.py for
 * images), with the reference's module names so its state_dict loads as is.
 */

export type Dims = 2 | 3;

/** Anything with a forward on one tensor (the convolution variants below). */
export interface Layer {
  forward(x: Tensor): Tensor;
}

/**
 * Causal 3-D convolution (ConvBlock3D): zero padding k//2 on both sides of H and W but k_t − 1 frames in front of
 * T only, so output frame t sees input frames ≤ t·stride. Wraps the convolution as `conv_1` like the reference.
 */
export class CausalConv3d extends Module implements Layer {
  conv_1: InstanceType<typeof Conv3d>;
  constructor(
    cin: number,
    cout: number,
    readonly kernel: number,
    stride: number[] = [1, 1, 1],
    bias = true,
  ) {
    super();
    this.conv_1 = new Conv3d(cin, cout, kernel, { stride, bias });
  }
  forward(x: Tensor): Tensor {
    const k = this.kernel;
    const padded = E.pad(x, [
      [k - 1, 0],
      [k >> 1, k >> 1],
      [k >> 1, k >> 1],
    ]);
    return this.conv_1.forward(padded);
  }
}

/** The conv of either model: causal 3-D, or 2-D with symmetric padding k//2 (images are not causal). */
export function makeConv(
  dims: Dims,
  cin: number,
  cout: number,
  kernel: number,
  o: { stride?: number[]; bias?: boolean } = {},
): Module & Layer {
  if (dims === 3) return new CausalConv3d(cin, cout, kernel, o.stride ?? [1, 1, 1], o.bias ?? true);
  return new Conv2d(cin, cout, kernel, { stride: o.stride ?? [1, 1], padding: kernel >> 1, bias: o.bias ?? true });
}

/**
 * How the models normalise: GroupNorm with `groups` groups (32 in the reference), its statistics over the whole
 * clip (the reference) or, `perFrame`, over each frame alone (vtok's causal_norm).
 */
export interface NormSpec {
  groups: number;
  perFrame: boolean;
}

/** The NormSpec of a model config: `norm_groups` (32 when absent) and `causal_norm`. */
export const normSpec = (cfg: { norm_groups?: number; causal_norm?: boolean }): NormSpec => ({
  groups: cfg.norm_groups ?? 32,
  perFrame: cfg.causal_norm === true,
});

/** N×C×T×H×W → (N·T)×C×H×W, so that a 2-D normalisation sees each frame alone. */
function framesAsBatch(x: Tensor): Tensor {
  const [n, c, t, h, w] = x.shape as [number, number, number, number, number];
  return E.reshape(E.transpose(x, [0, 2, 1, 3, 4]), [n * t, c, h, w]);
}

function batchAsFrames(y: Tensor, like: readonly number[]): Tensor {
  const [n, c, t, h, w] = like as [number, number, number, number, number];
  return E.transpose(E.reshape(y, [n, t, c, h, w]), [0, 2, 1, 3, 4]);
}

/** GroupNorm whose statistics are per (sample, group, frame): frame t's output depends on frame t alone. */
class FrameGroupNorm extends GroupNorm {
  override forward(x: Tensor): Tensor {
    return x.rank === 5 ? batchAsFrames(super.forward(framesAsBatch(x)), x.shape) : super.forward(x);
  }
}

/** GroupNorm(groups, eps 1e-6, affine), the only normalisation of both models. */
export const groupNorm = (norm: NormSpec, channels: number): GroupNorm =>
  norm.perFrame ? new FrameGroupNorm(norm.groups, channels, 1e-6) : new GroupNorm(norm.groups, channels, 1e-6);

export const swish = (x: Tensor): Tensor => E.silu(x);

/**
 * ResBlock: GN → swish → conv3 → GN → swish → conv3 (no biases), plus the input, 1×1-projected when the width
 * changes. No dropout.
 */
export class ResBlock extends Module {
  norm1: GroupNorm;
  conv1: Module & Layer;
  norm2: GroupNorm;
  conv2: Module & Layer;
  nin_shortcut: (Module & Layer) | null;
  constructor(dims: Dims, cin: number, cout: number, norm: NormSpec) {
    super();
    this.norm1 = groupNorm(norm, cin);
    this.conv1 = makeConv(dims, cin, cout, 3, { bias: false });
    this.norm2 = groupNorm(norm, cout);
    this.conv2 = makeConv(dims, cout, cout, 3, { bias: false });
    this.nin_shortcut = cin !== cout ? makeConv(dims, cin, cout, 1, { bias: false }) : null;
  }
  forward(x: Tensor): Tensor {
    const h = this.conv2.forward(swish(this.norm2.forward(this.conv1.forward(swish(this.norm1.forward(x))))));
    return E.add(this.nin_shortcut ? this.nin_shortcut.forward(x) : x, h);
  }
}

/**
 * Adaptive GroupNorm (StyleGAN-style, conditioned on the quantized latent zq): GroupNorm(no affine) of x,
 * scaled by gamma(σ) and shifted by beta(μ), where μ, σ are per-(sample, channel) statistics of zq over all its
 * positions. σ uses the unbiased (N − 1) variance, as torch.var does by default in the reference. Per frame, the
 * statistics are of each latent frame alone, and frame j of x (T = 1 + r·(T′ − 1) frames) takes those of the
 * latent frame that covers it causally: ⌈j / r⌉.
 */
export class AdaptiveGroupNorm extends Module {
  gamma: Linear;
  beta: Linear;
  constructor(
    zChannels: number,
    readonly channels: number,
    readonly norm: NormSpec,
  ) {
    super();
    this.gamma = new Linear(zChannels, channels);
    this.beta = new Linear(zChannels, channels);
  }
  forward(x: Tensor, zq: Tensor): Tensor {
    if (this.norm.perFrame && x.rank === 5) return this.perFrame(x, zq);
    const [b, c] = zq.shape as [number, number];
    const zf = E.reshape(zq, [b, c, -1]);
    const std = E.sqrt(E.add(E.variance(zf, 2, false, 1), 1e-6));
    const mean = E.mean(zf, 2);
    const bshape = [b, this.channels, ...x.shape.slice(2).map(() => 1)];
    const scale = E.reshape(this.gamma.forward(std), bshape);
    const shift = E.reshape(this.beta.forward(mean), bshape);
    return E.add(E.mul(E.groupNorm(x, this.norm.groups, null, null, 1e-6), scale), shift);
  }
  private perFrame(x: Tensor, zq: Tensor): Tensor {
    const [b, c, tz] = zq.shape as [number, number, number];
    const t = x.shape[2]!;
    const r = tz > 1 ? (t - 1) / (tz - 1) : 1;
    if (!Number.isInteger(r) || (tz === 1 && t !== 1))
      throw new Error(`AdaptiveGroupNorm: ${t} frames do not cover ${tz} latent frames causally`);
    const zf = E.reshape(E.transpose(zq, [0, 2, 1, 3, 4]), [b, tz, c, -1]);
    const std = E.sqrt(E.add(E.variance(zf, 3, false, 1), 1e-6));
    const mean = E.mean(zf, 3);
    // [b, T′, channels] → [b, T, channels]: latent frame 0 covers frame 0, latent frame k ≥ 1 covers r frames.
    const spread = (s: Tensor): Tensor => {
      if (tz === 1 || r === 1) return s;
      const rest = E.reshape(E.narrow(s, 1, 1, tz - 1), [b, tz - 1, 1, this.channels]);
      const repeated = E.reshape(E.broadcastTo(rest, [b, tz - 1, r, this.channels]), [b, (tz - 1) * r, this.channels]);
      return E.concat([E.narrow(s, 1, 0, 1), repeated], 1);
    };
    const bshape = [b, t, this.channels, 1, 1];
    const scale = E.reshape(spread(this.gamma.forward(std)), bshape);
    const shift = E.reshape(spread(this.beta.forward(mean)), bshape);
    const y = E.reshape(E.groupNorm(framesAsBatch(x), this.norm.groups, null, null, 1e-6), [
      b,
      t,
      this.channels,
      ...x.shape.slice(3),
    ]);
    return E.transpose(E.add(E.mul(y, scale), shift), [0, 2, 1, 3, 4]);
  }
}

/**
 * Depth-to-space in the reference's order: the channel index is (block offsets, outer) × C (inner), i.e.
 * view(N, f_1…f_k, C, s_1…s_k) → (N, C, s_1, f_1, …, s_k, f_k). This differs from PyTorch's pixel_shuffle
 * (E.depthToSpace), whose channel index is C outer.
 */
export function depthToSpaceBlocks(x: Tensor, factors: number[]): Tensor {
  const k = factors.length;
  const [n, cc, ...sp] = x.shape as [number, number, ...number[]];
  const f = factors.reduce((a, b) => a * b, 1);
  const c = cc / f;
  const y = E.reshape(x, [n, ...factors, c, ...sp]);
  const perm = [0, 1 + k, ...sp.flatMap((_, i) => [2 + k + i, 1 + i])];
  return E.reshape(E.transpose(y, perm), [n, c, ...sp.map((s, i) => s * factors[i]!)]);
}

/**
 * Upsampler: conv3 C → C·∏block, then depth-to-space. After a temporal ×2 the duplicate frame 1 is dropped, so a
 * causal clip of T = 1 + k frames becomes 1 + 2k (and a single frame stays single).
 */
export class Upsampler extends Module {
  conv1: Module & Layer;
  constructor(
    readonly dims: Dims,
    channels: number,
    readonly block: number[],
  ) {
    super();
    this.conv1 = makeConv(dims, channels, channels * block.reduce((a, b) => a * b, 1), 3);
  }
  forward(x: Tensor): Tensor {
    let y = depthToSpaceBlocks(this.conv1.forward(x), this.block);
    if (this.dims === 3 && this.block[0]! > 1) {
      const t = y.shape[2]!;
      y = t > 2 ? E.concat([E.narrow(y, 2, 0, 1), E.narrow(y, 2, 2, t - 2)], 2) : E.narrow(y, 2, 0, 1);
    }
    return y;
  }
}
