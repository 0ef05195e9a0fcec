import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';
import { Embedding, Module, Param, uniform } from '../nn/index.js';

/**
 * Stochastic vector quantization with an L2-normalised (cosine) codebook, as LARP's SimpleVectorQuantizer
 * (models/bottleneck.py, registered 'vq', l2_normalized + stochastic). Codes are drawn from
 * softmax(cos / τ) while training (and, as in the reference, in eval unless `deterministic` is set), or taken
 * as the argmax. Sampling is Gumbel-max on uniform noise that the compiled graph draws from the engine's RNG at
 * every call, so the draw is exact in distribution and needs no host round trip.
 */
export interface SvqConfig {
  codebookSize: number;
  dim: number;
  commitmentLossWeight: number;
  codebookLossWeight: number;
  /** Sampling temperature τ (the reference's stochastic_temperature, 0.03). */
  temperature: number;
  /**
   * Weight of the codebook-usage entropy term inside lossQ (the reference's entropy_loss_weight; 0 in the released
   * config, and 0 adds nothing to the graph). See `entropyPenalty`.
   */
  entropyLossWeight?: number;
  /** Temperature of the distribution the entropy term is taken of (the reference's entropy_loss_temperature, 0.01). */
  entropyTemperature?: number;
}

export interface SvqOutput {
  /** Straight-through quantized codes z + sg(q − z): the value of q, the gradient of z. [B, n, d] */
  regularized_z: Tensor;
  /** The L2-normalised input z. [B, n, d] */
  unregularized_z: Tensor;
  /** Chosen code per token, int64 [B, n]. */
  indices: Tensor;
  /** Cosine similarities z·Eᵀ, rows b·n. [B·n, K] */
  cosSim: Tensor;
  lossCommit: Tensor;
  lossCodebook: Tensor;
  /** The entropy penalty (training with entropyLossWeight > 0 only). */
  lossEntropy?: Tensor;
  /** commitment_loss_weight · lossCommit + codebook_loss_weight · lossCodebook (+ entropyLossWeight · lossEntropy) */
  lossQ: Tensor;
}

/**
 * The usual VQ codebook-usage penalty over rows of logits [M, K]: the mean entropy of each row's softmax minus the
 * entropy of their average. Minimising it makes each token confident about its code while the batch as a whole
 * spreads over the codebook, so no code is starved and the encoder cannot collapse onto a few codes.
 */
export function entropyPenalty(logits: Tensor): Tensor {
  const logp = E.logSoftmax(logits, -1);
  const p = E.exp(logp);
  const perToken = E.mean(E.neg(E.sum(E.mul(p, logp), -1)));
  const avg = E.mean(p, 0);
  const ofAverage = E.neg(E.sum(E.mul(avg, E.log(E.add(avg, 1e-8)))));
  return E.sub(perToken, ofAverage);
}

/** F.normalize(x, dim=-1): x / max(‖x‖₂, 1e-12). */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  const norm = E.sqrt(E.sum(E.square(x), -1, true));
  return E.div(x, E.maximum(norm, eps));
}

/**
 * One draw per row from softmax(logits) along the last axis, by inverting the CDF: the index is the number of
 * cumulative probabilities at or below u·total, u uniform. One random number per row (a Gumbel-max draw needs one
 * per logit: 8M per step for LARP-L's 1024 tokens × 8192 codes, all made on the host), and two passes over the
 * logits instead of five.
 */
export function sampleCategorical(logits: Tensor): Tensor {
  const k = logits.shape[logits.rank - 1]!;
  const cdf = E.cumsum(E.softmax(E.stopGradient(logits), -1), -1);
  const total = E.narrow(cdf, -1, k - 1, 1);
  const u = E.mul(E.randomUniform([...logits.shape.slice(0, -1), 1]), total);
  const below = E.sum(E.cast(E.lessEqual(cdf, u), 'float32'), -1);
  // u·total < total, so at most k − 1 entries lie below; the clamp guards rounding at the top.
  return E.cast(E.minimum(below, E.scalar(k - 1)), 'int64');
}

export class StochasticVQ extends Module {
  /** The codebook (unnormalised rows; nn.Embedding(K, d), kaiming-uniform init as in the reference). */
  embedding: Embedding;
  /** Argmax instead of sampling when not training (the reference's set_vq_eval_deterministic). */
  deterministic = false;

  constructor(readonly cfg: SvqConfig) {
    super();
    this.embedding = new Embedding(cfg.codebookSize, cfg.dim);
    const bound = Math.sqrt(6 / cfg.dim); // kaiming_uniform_(a=0), fan_in = d
    this.embedding.weight = new Param(uniform([cfg.codebookSize, cfg.dim], -bound, bound));
  }

  /** The L2-normalised codebook E [K, d] (get_emb). */
  codebook(): Tensor {
    return l2Normalize(this.embedding.weight.value);
  }

  /** indices (any shape) → normalised codebook rows […, d] (get_codebook_entry). */
  codebookEntry(indices: Tensor): Tensor {
    return E.embedding(this.codebook(), indices);
  }

  /**
   * `alpha` (a scalar tensor in [0, 1], training only) blends the decoder's input from the continuous z (0) to the
   * straight-through code (1): a quantizer warm-up, so the encoder learns features before codes are drawn from them.
   * The commitment term, which pulls the encoder toward its code, ramps with it; the codebook and entropy terms stay
   * on, so the codebook follows the latents while they form.
   */
  forward(projected: Tensor, alpha?: Tensor): SvqOutput {
    const [b, n, d] = projected.shape as [number, number, number];
    const z = l2Normalize(projected);
    const emb = this.codebook();
    const cosSim = E.matmul(E.reshape(z, [b * n, d]), E.swapAxes(emb));
    const sample = this.training || !this.deterministic;
    const flat = sample ? sampleCategorical(E.mul(cosSim, 1 / this.cfg.temperature)) : E.argmax(cosSim, -1);
    const indices = E.reshape(flat, [b, n]);
    const q = E.embedding(emb, indices);
    // Commitment pulls the encoder toward its code, the codebook term pulls the code toward the encoder.
    const lossCommit = E.mseLoss(E.stopGradient(q), z);
    const lossCodebook = E.mseLoss(q, E.stopGradient(z));
    const commitWeight = alpha ? E.mul(alpha, this.cfg.commitmentLossWeight) : this.cfg.commitmentLossWeight;
    let lossQ = E.add(E.mul(lossCommit, commitWeight), E.mul(lossCodebook, this.cfg.codebookLossWeight));
    const entropyWeight = this.cfg.entropyLossWeight ?? 0;
    // Only while training: it shapes the encoder and codebook, and inference graphs stay as the reference's.
    const lossEntropy =
      this.training && entropyWeight > 0
        ? entropyPenalty(E.mul(cosSim, 1 / (this.cfg.entropyTemperature ?? 0.01)))
        : undefined;
    if (lossEntropy) lossQ = E.add(lossQ, E.mul(lossEntropy, entropyWeight));
    // Written as the reference writes it (z + (q − z).detach()) so the forward value matches it to the last bit.
    const shift = E.stopGradient(E.sub(q, z));
    const regularized = E.add(z, alpha ? E.mul(shift, alpha) : shift);
    return {
      regularized_z: regularized,
      unregularized_z: z,
      indices,
      cosSim,
      lossCommit,
      lossCodebook,
      ...(lossEntropy ? { lossEntropy } : {}),
      lossQ,
    };
  }
}
