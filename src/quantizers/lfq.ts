import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { buffer, Module, type Param } from '../nn/module.js';

/**
 * Lookup-free quantization (LFQ, MAGVIT-v2 §3.1): each of the D latent channels is quantized to its sign, so the
 * implicit codebook is {−1, +1}^D (K = 2^D codes) and the token index is the bit pattern. Training adds the
 * entropy penalty E[H(q(z))] − γ·H[E(q(z))] over the soft assignment p(c | z) = softmax_c(2·z·c / τ) and the
 * VQ-VAE commitment loss. Tensors are channels-first, z: [B, D, …spatial]; ids: int64 [B, …spatial].
 */

/** 'lsb': channel d is bit d (paper, Open-MAGVIT2); 'msb': channel d is bit D−1−d (lucidrains). */
export type BitOrder = 'lsb' | 'msb';

/** Value of channel d's bit in the index. */
export function bitWeights(dim: number, order: BitOrder = 'lsb'): number[] {
  return Array.from({ length: dim }, (_, d) => 2 ** (order === 'lsb' ? d : dim - 1 - d));
}

/** A [1, D, 1, …] tensor of per-channel values, to broadcast against channels-first latents. */
function perChannel(values: number[], rank: number, dtype: E.DType): Tensor {
  return E.tensor(values, [1, values.length, ...Array(rank - 2).fill(1)], dtype);
}

/**
 * q = where(z > 0, 1, −1) (zero goes to −1, as in the reference) with the identity (straight-through) gradient to
 * z, and the token ids Σ_d 2^bit(d)·[z_d > 0].
 */
export function lfqQuantize(z: Tensor, order: BitOrder = 'lsb'): { quantized: Tensor; indices: Tensor } {
  const positive = E.greater(z, 0);
  const q = E.where(positive, 1, -1);
  const bits = E.cast(positive, 'int64');
  const indices = E.sum(E.mul(bits, perChannel(bitWeights(z.shape[1]!, order), z.rank, 'int64')), 1);
  return { quantized: E.straightThrough(q, z), indices };
}

/**
 * Token ids [B, …spatial] → ±1 codes [B, D, …spatial] (decoding). Bits are extracted in float64 as
 * floor(i / 2^b) − 2·floor(i / 2^(b+1)), exact for D ≤ 52 with no integer-shift ops.
 */
export function lfqCodes(indices: Tensor, dim: number, order: BitOrder = 'lsb'): Tensor {
  const v = E.unsqueeze(E.cast(indices, 'float64'), 1);
  const w = bitWeights(dim, order);
  const lo = E.floor(E.div(v, perChannel(w, v.rank, 'float64')));
  const hi = E.floor(
    E.div(
      v,
      perChannel(
        w.map((x) => 2 * x),
        v.rank,
        'float64',
      ),
    ),
  );
  const bit = E.sub(lo, E.mul(hi, 2));
  return E.cast(E.sub(E.mul(bit, 2), 1), 'float32');
}

/** The ±1 codebook of `bits` bits, row j = code of index j: [2^bits, bits]. */
export function lfqCodebook(bits: number, order: BitOrder = 'lsb'): Tensor {
  const k = 2 ** bits;
  const w = bitWeights(bits, order);
  const v = new Float32Array(k * bits);
  for (let j = 0; j < k; j++) for (let d = 0; d < bits; d++) v[j * bits + d] = Math.floor(j / w[d]!) % 2 ? 1 : -1;
  return E.tensor(v, [k, bits]);
}

/** Channels-first latents as a token matrix [N, D] (N = B·∏spatial, row-major over (b, …spatial)). */
export function tokens(z: Tensor): Tensor {
  return E.reshape(E.moveAxis(z, 1, -1), [-1, z.shape[1]!]);
}

/** Mean of (z − sg(q))²: pulls the latents towards their codes; no gradient to the codes (there are none). */
export function commitmentLoss(z: Tensor): Tensor {
  return E.mseLoss(z, E.stopGradient(E.where(E.greater(z, 0), 1, -1)));
}

export interface EntropyOptions {
  /** τ of p(c | z) = softmax(2·z·c / τ); 0.01 in MAGVIT-v1/v2, Open-MAGVIT2 and lucidrains. */
  temperature?: number;
  /**
   * Bits per sub-group for the codebook (batch) entropy. The 2^D-way average distribution is estimated as a sum
   * of entropies over consecutive channel groups of this many bits (D itself = the exact joint entropy). Default:
   * D when D ≤ 12, otherwise the groups of ≤ 12 bits that split D most evenly (18 → 9 + 9), so 2^18 trains on a
   * CPU. The sum is an upper bound of the joint entropy, equal to it when the groups are independent in the batch.
   */
  groupBits?: number;
  /**
   * 'openmagvit2': per-sample entropy exact and factorised per bit, batch entropy −Σ p̄·ln(p̄ + eps).
   * 'lucidrains': both terms over each group's full softmax with ln(max(p, eps)), averaged over groups.
   */
  style?: 'openmagvit2' | 'lucidrains';
  eps?: number;
}

export function defaultGroupBits(dim: number): number {
  if (dim <= 12) return dim;
  return Math.ceil(dim / Math.ceil(dim / 12));
}

/** Channel groups [start, size) for the codebook entropy. */
export function entropyGroups(dim: number, groupBits = defaultGroupBits(dim)): [number, number][] {
  if (!Number.isInteger(groupBits) || groupBits < 1)
    throw new Error(`LFQ: groupBits must be a positive integer, got ${groupBits}`);
  const out: [number, number][] = [];
  for (let s = 0; s < dim; s += groupBits) out.push([s, Math.min(groupBits, dim - s)]);
  return out;
}

/**
 * Per-sample entropy, exact by factorisation: p(c | x) = ∏_i σ(c_i·s_i) with s_i = 4·x_i/τ, so
 * H = Σ_i h(s_i), h(s) = softplus(−|s|) + |s|·σ(−|s|) (the binary entropy of σ(s), stable for any |s|).
 * Returns the mean over tokens of the sum over bits.
 */
export function perSampleEntropy(x: Tensor, temperature = 0.01): Tensor {
  const a = E.abs(E.mul(x, 4 / temperature));
  const na = E.neg(a);
  const h = E.add(E.softplus(na), E.mul(a, E.sigmoid(na)));
  return E.mean(E.sum(h, -1));
}

/** Soft assignment of tokens [N, g] to the 2^g codes of their bits: softmax(2·x·c / τ), [N, 2^g]. */
function codeProbs(x: Tensor, temperature: number): Tensor {
  return E.softmax(codeLogits(x, temperature), -1);
}

/** 2·x·cᵀ / τ against the LSB-first codebook of x's width (any fixed order gives the same entropies). */
function codeLogits(x: Tensor, temperature: number): Tensor {
  const cb = lfqCodebook(x.shape[1]!);
  return E.mul(E.matmul(x, E.transpose(cb)), 2 / temperature);
}

export interface EntropyTerms {
  /** Mean over tokens of H(p(· | z)) (minimised: confident codes). */
  perSample: Tensor;
  /** H of the token-averaged distribution (maximised: the whole codebook in use). */
  codebook: Tensor;
}

/** Both entropy terms for channels-first latents z [B, D, …] (statistics over every token of the batch). */
export function lfqEntropy(z: Tensor, opts: EntropyOptions = {}): EntropyTerms {
  const tau = opts.temperature ?? 0.01;
  const eps = opts.eps ?? 1e-5;
  const x = tokens(z);
  const groups = entropyGroups(x.shape[1]!, opts.groupBits);
  const parts = groups.map(([s, n]) => (groups.length === 1 ? x : E.narrow(x, 1, s, n)));
  if (opts.style === 'lucidrains') {
    // ln(max(p, eps)) in both terms, means over groups (vector-quantize-pytorch's num_codebooks).
    const ent = (p: Tensor) => E.neg(E.sum(E.mul(p, E.log(E.maximum(p, eps))), -1));
    const ps = parts.map((g) => codeProbs(g, tau));
    const perSample = E.div(
      ps.map((p) => E.mean(ent(p))).reduce((a, b) => E.add(a, b)),
      ps.length,
    );
    const codebook = E.div(
      ps.map((p) => ent(E.mean(p, 0))).reduce((a, b) => E.add(a, b)),
      ps.length,
    );
    return { perSample, codebook };
  }
  const codebook = parts
    .map((g) => {
      const avg = E.mean(codeProbs(g, tau), 0);
      return E.neg(E.sum(E.mul(avg, E.log(E.add(avg, eps)))));
    })
    .reduce((a, b) => E.add(a, b));
  return { perSample: perSampleEntropy(x, tau), codebook };
}

export interface LFQConfig extends EntropyOptions {
  /** Bits per token D (vocabulary 2^D). */
  dim: number;
  bitOrder?: BitOrder;
  /** Weight of the per-sample entropy (Open-MAGVIT2 sample_minimization_weight). */
  sampleWeight?: number;
  /** γ, weight of the codebook entropy (batch_maximization_weight / diversity_gamma). */
  batchWeight?: number;
  /** Hold lucidrains' persistent `mask` buffer (2^bit per channel), so its state_dict loads. */
  maskBuffer?: boolean;
}

export interface LFQLosses {
  perSampleEntropy: Tensor;
  codebookEntropy: Tensor;
  /** sampleWeight·H_sample − batchWeight·H_codebook (normally negative). */
  entropy: Tensor;
  commitment: Tensor;
}

export interface LFQOutput {
  /** ±1 codes with the straight-through gradient, shaped like z. */
  quantized: Tensor;
  /** int64 [B, …spatial]. */
  indices: Tensor;
  /** In training mode only (the reference returns zeros in eval mode). */
  losses?: LFQLosses;
}

/** The quantizer as a module; it has no parameters (lucidrains' bit mask is an optional buffer). */
export class LFQ extends Module {
  mask: Param | null;
  constructor(readonly cfg: LFQConfig) {
    super();
    this.mask = cfg.maskBuffer ? buffer(E.tensor(bitWeights(cfg.dim, cfg.bitOrder), [cfg.dim], 'int64')) : null;
  }

  get dim(): number {
    return this.cfg.dim;
  }
  get codebookSize(): number {
    return 2 ** this.cfg.dim;
  }

  forward(z: Tensor): LFQOutput {
    if (z.shape[1] !== this.cfg.dim)
      throw new Error(`LFQ: latent has ${z.shape[1]} channels, expected ${this.cfg.dim}`);
    const out: LFQOutput = lfqQuantize(z, this.cfg.bitOrder);
    if (this.training) out.losses = this.losses(z);
    return out;
  }

  losses(z: Tensor): LFQLosses {
    const { perSample, codebook } = lfqEntropy(z, this.cfg);
    const entropy = E.sub(E.mul(perSample, this.cfg.sampleWeight ?? 1), E.mul(codebook, this.cfg.batchWeight ?? 1));
    return { perSampleEntropy: perSample, codebookEntropy: codebook, entropy, commitment: commitmentLoss(z) };
  }

  /** ids [B, …spatial] → ±1 codes [B, D, …spatial]. */
  decode(indices: Tensor): Tensor {
    return lfqCodes(indices, this.cfg.dim, this.cfg.bitOrder);
  }
}

/**
 * The quantizer's share of the training loss, Open-MAGVIT2 / MAGVIT-v2 weights by default:
 * codebookWeight(0.1)·(H_sample − γ·H_codebook) + commitWeight(0.25)·commitment.
 */
export function lfqLoss(l: LFQLosses, weights: { codebookWeight?: number; commitWeight?: number } = {}): Tensor {
  return E.add(E.mul(l.entropy, weights.codebookWeight ?? 0.1), E.mul(l.commitment, weights.commitWeight ?? 0.25));
}
