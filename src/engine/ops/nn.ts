import { apply, apply1, defineOp } from '../op.js';
import { normAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { full, randomBytes, randomUniform, tensor } from './creation.js';
import {
  abs,
  add,
  cast,
  equal,
  exp,
  greaterEqual,
  logicalNot,
  mul,
  neg,
  rsqrt,
  square,
  sub,
  sumTo,
  where,
} from './elementwise.js';
import { takeAlongAxis } from './indexing.js';
import { matmul } from './linalg.js';
import { reshape, swapAxes, unsqueeze } from './movement.js';
import { maskedMean, mean, sum } from './reduce.js';

/** Neural-network ops: softmax family, normalisations, attention, dropout and losses. */

const softmaxOp = defineOp<{ axis: number }>({
  name: 'softmax',
  infer: ([x]) => [{ shape: x.shape, dtype: x.dtype }],
  lower: (ctx, ins, outs, a) => ctx.emit('Softmax', ins, outs, { axis: a.axis }),
  vjp: ([g], { outputs: [y], attrs }) => [mul(y, sub(g!, sum(mul(g!, y), attrs.axis, true)))],
});

const logSoftmaxOp = defineOp<{ axis: number }>({
  name: 'logSoftmax',
  infer: ([x]) => [{ shape: x.shape, dtype: x.dtype }],
  lower: (ctx, ins, outs, a) => ctx.emit('LogSoftmax', ins, outs, { axis: a.axis }),
  vjp: ([g], { outputs: [y], attrs }) => [sub(g!, mul(exp(y), sum(g!, attrs.axis, true)))],
});

export const softmax = (x: Tensor, axis = -1): Tensor => apply1(softmaxOp, [x], { axis: normAxis(axis, x.rank) });
export const logSoftmax = (x: Tensor, axis = -1): Tensor => apply1(logSoftmaxOp, [x], { axis: normAxis(axis, x.rank) });

/**
 * Normalisation over the trailing axes from `axis` (ONNX LayerNormalization, one native kernel), with
 * elementwise scale and bias broadcast over those axes. It also returns mean and 1/σ, which its VJP reuses.
 */
const layerNormOp = defineOp<{ axis: number; eps: number }>({
  name: 'layerNormalization',
  infer([x, w], a) {
    const stat = x.shape.map((d, i) => (i < a.axis ? d : 1));
    if (w.shape.join() !== x.shape.slice(a.axis).join())
      throw new Error(`scale [${w.shape}] must be [${x.shape.slice(a.axis)}]`);
    return [
      { shape: x.shape, dtype: x.dtype },
      { shape: stat, dtype: 'float32' },
      { shape: stat, dtype: 'float32' },
    ];
  },
  lower: (ctx, ins, outs, a) => ctx.emit('LayerNormalization', ins, outs, { axis: a.axis, epsilon: { float: a.eps } }),
  vjp([g], { inputs: [x, w, b], outputs: [, mu, invStd], attrs }, needs) {
    if (!g) return [null, null, null];
    const axes = x.shape.map((_, i) => i).filter((i) => i >= attrs.axis);
    const xhat = mul(sub(x, mu), invStd);
    const gxhat = mul(g, w);
    const gx = needs[0]
      ? mul(invStd, sub(sub(gxhat, mean(gxhat, axes, true)), mul(xhat, mean(mul(gxhat, xhat), axes, true))))
      : null;
    return [gx, needs[1] ? sumTo(mul(g, xhat), w.shape) : null, b && needs[2] ? sumTo(g, b.shape) : null];
  },
});

/** Normalises over the axes from `axis` on; `weight`/`bias` have those axes' shape (ones/zeros when omitted). */
export function normalize(x: Tensor, axis: number, eps: number, weight?: Tensor | null, bias?: Tensor | null): Tensor {
  const ax = normAxis(axis, x.rank);
  const shape = x.shape.slice(ax);
  const w = weight ?? full(shape, 1, x.dtype);
  return apply(layerNormOp, bias ? [x, w, bias] : [x, w], { axis: ax, eps })[0]!;
}

/** LayerNorm over the last dimension (PyTorch nn.LayerNorm with a 1-D normalized shape). */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return normalize(x, -1, eps, weight, bias);
}

/** GroupNorm over N×C×…: statistics per (sample, group), then a per-channel affine. */
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const [n, c, ...sp] = x.shape as [number, number, ...number[]];
  if (c % groups !== 0) throw new Error(`groupNorm: ${c} channels not divisible by ${groups} groups`);
  const y = reshape(normalize(reshape(x, [n, groups, -1]), 2, eps), x.shape);
  const cshape = [c, ...sp.map(() => 1)];
  const scaled = weight ? mul(y, reshape(weight, cshape)) : y;
  return bias ? add(scaled, reshape(bias, cshape)) : scaled;
}

/** RMSNorm over the last dimension: x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const y = mul(x, rsqrt(add(mean(square(x), -1, true), eps)));
  return weight ? mul(y, weight) : y;
}

// ---- attention ----

/** Which keys each query may see. `prefix`: bidirectional over the first P positions, causal after (prefix LM). */
export type AttentionMask = 'none' | 'causal' | { prefix: number } | { window: number; causal?: boolean } | Tensor;

/** Additive mask bias [Tq, Tk] (0 = visible, −1e9 = hidden), built at trace time as a constant. */
export function maskBias(mask: Exclude<AttentionMask, Tensor | 'none'>, tq: number, tk: number): Tensor {
  const v = new Array<number>(tq * tk);
  const off = tk - tq; // queries are the last tq positions (decoding with a cache)
  for (let i = 0; i < tq; i++) {
    const qi = i + off;
    for (let j = 0; j < tk; j++) {
      let ok: boolean;
      if (mask === 'causal') ok = j <= qi;
      else if ('prefix' in mask) ok = j <= qi || (j < mask.prefix && qi < mask.prefix);
      else ok = Math.abs(qi - j) < mask.window && (!mask.causal || j <= qi);
      v[i * tk + j] = ok ? 0 : -1e9;
    }
  }
  return tensor(v, [tq, tk]);
}

/**
 * Scaled dot-product attention, q: […, Tq, d], k: […, Tk, d], v: […, Tk, dv]. A tensor mask is either bool
 * (true = visible) or an additive float bias broadcastable to […, Tq, Tk].
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { mask?: AttentionMask; scale?: number } = {},
): Tensor {
  const d = q.shape[q.rank - 1]!;
  let scores = mul(matmul(q, swapAxes(k)), opts.scale ?? 1 / Math.sqrt(d));
  const m = opts.mask ?? 'none';
  if (m !== 'none') {
    const tq = q.shape[q.rank - 2]!,
      tk = k.shape[k.rank - 2]!;
    if (typeof m === 'object' && 'source' in m) scores = m.dtype === 'bool' ? where(m, scores, -1e9) : add(scores, m);
    else scores = add(scores, maskBias(m, tq, tk));
  }
  return matmul(softmax(scores, -1), v);
}

/**
 * Inverted dropout: zero with probability p and scale the rest by 1/(1−p); identity when not training. Where p is
 * within 2% of a multiple of 1/256 (0.1 → 26/256 ≈ 0.1016, 0.5, 0.25, …) the mask comes from random bytes and the
 * kept values are scaled by that exact keep rate: attention dropout then draws a byte per element instead of a
 * float, a quarter of the host RNG work and of the copy into the graph. Other p use float noise.
 */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  if (p >= 1) return mul(x, 0);
  const dropped = Math.round(p * 256);
  if (dropped > 0 && dropped < 256 && Math.abs(dropped / 256 - p) <= 0.02 * p) {
    const keep = greaterEqual(cast(randomBytes(x.shape), x.dtype), dropped);
    return where(keep, mul(x, 256 / (256 - dropped)), 0);
  }
  return where(greaterEqual(randomUniform(x.shape), p), mul(x, 1 / (1 - p)), 0);
}

// ---- losses ----

export interface CrossEntropyOptions {
  /** Targets equal to this index contribute nothing (PyTorch's default −100). */
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: 'mean' | 'sum' | 'none';
}

/** Cross-entropy of logits […, C] against int64 class targets […], as torch.nn.functional.cross_entropy. */
export function crossEntropy(logits: Tensor, targets: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const ignore = o.ignoreIndex ?? -100;
  const eps = o.labelSmoothing ?? 0;
  const valid = logicalNot(equal(targets, tensor([ignore], [], targets.dtype)));
  const safe = where(valid, targets, tensor([0], [], targets.dtype));
  const lsm = logSoftmax(logits, -1);
  let loss = neg(reshape(takeAlongAxis(lsm, unsqueeze(safe, -1), -1), targets.shape));
  if (eps > 0) loss = add(mul(loss, 1 - eps), mul(neg(mean(lsm, -1)), eps));
  if (o.reduction === 'none') return where(valid, loss, 0);
  if (o.reduction === 'sum') return sum(where(valid, loss, 0));
  return maskedMean(loss, valid);
}

export function mseLoss(a: Tensor, b: Tensor): Tensor {
  return mean(square(sub(a, b)));
}

export function l1Loss(a: Tensor, b: Tensor): Tensor {
  return mean(abs(sub(a, b)));
}
