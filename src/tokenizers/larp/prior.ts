import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import { sampleCategorical } from '../../quantizers/svq.js';
import type { PriorConfig } from './config.js';
import type { LarpModel } from './model.js';

/**
 * The prior loss (larp_tokenizer.py: prior_ar_predict_n_rounds_ss, calculate_prior_loss_with_pred). GPTC reads
 * the straight-through quantized codes and predicts each next code; logits are cosine similarities with the
 * detached normalised codebook over the temperature; the loss is cross-entropy against the SVQ indices of tokens
 * 1…n−1. Its gradient reaches the encoder only through the straight-through inputs (never the codebook or decoder).
 *
 * Scheduled sampling: after a teacher-forced round, later rounds see, at a random fraction ssRatio of positions,
 * a code sampled from the previous round's predictive distribution instead of the true one.
 */
export interface PriorPrediction {
  /** Cosine logits for positions 1…n−1 over the codebook, / latent_ce_temperature. [B, n−1, K] */
  logits: Tensor;
  /** The L2-normalised prediction for every position (position 0 = the input code). [B, n, d] */
  pred: Tensor;
  /** The head's output before normalisation. [B, n−1, d] */
  raw: Tensor;
}

function priorConfig(model: LarpModel): PriorConfig {
  if (!model.prior_model || !model.cfg.prior)
    throw new Error('this LARP model has no prior (prior_model.name is "none")');
  return model.cfg.prior;
}

/** One teacher-forced pass of the prior over codes [B, n, d]. */
export function priorPredict(model: LarpModel, arInput: Tensor): PriorPrediction {
  const cfg = priorConfig(model);
  const { pred, raw } = model.prior_model!.arPredict(arInput);
  const emb = E.stopGradient(model.quantizer.codebook());
  const n = arInput.shape[1]!;
  const logits = E.mul(E.narrow(E.matmul(pred, E.swapAxes(emb)), 1, 1, n - 1), 1 / cfg.latentCeTemperature);
  return { logits, pred, raw };
}

/**
 * The reference's replacement-rate schedule: a linear ramp to mix_ss_max_ratio over the first peak fraction of training
 * (1 without mix SS).
 */
export function scheduledSamplingRatio(prior: PriorConfig, globalStep: number, maxSteps: number): number {
  if (!prior.useMixSs) return 1;
  return Math.min((globalStep / (maxSteps * prior.mixSsPeakStepsRatio)) * prior.mixSsMaxRatio, prior.mixSsMaxRatio);
}

/** Percent of rows whose label is among the k largest logits (ties counted in the label's favour). */
export function topkAccuracy(logits: Tensor, labels: Tensor, k: number): Tensor {
  const target = E.takeAlongAxis(logits, E.unsqueeze(labels, -1), -1);
  const above = E.sum(E.cast(E.greater(logits, target), 'float32'), -1);
  return E.mul(E.mean(E.cast(E.less(above, k), 'float32')), 100);
}

export interface PriorLossResult {
  loss: Tensor;
  /** Logits of the first scored round (top-k accuracies are taken from them, as in the reference). */
  logits: Tensor;
  top1: Tensor;
  top5: Tensor;
}

export interface PriorLossOptions {
  /** Replacement rate for the scheduled-sampling rounds (scalar tensor or number; see scheduledSamplingRatio). */
  ssRatio?: Tensor | number;
  /** Overrides the config's n_rounds (1 = teacher forcing only). */
  nRounds?: number;
}

/** arInput: straight-through quantized codes [B, n, d]; indices: their SVQ indices [B, n]. */
export function priorLoss(
  model: LarpModel,
  arInput: Tensor,
  indices: Tensor,
  opts: PriorLossOptions = {},
): PriorLossResult {
  const cfg = priorConfig(model);
  const nRounds = opts.nRounds ?? cfg.nRounds;
  const [b, n, d] = arInput.shape as [number, number, number];
  const labels = E.narrow(indices, 1, 1, n - 1);
  const rest = E.narrow(arInput, 1, 1, n - 1);
  const ratio = opts.ssRatio ?? (cfg.useMixSs ? undefined : 1);
  if (nRounds > 1 && ratio === undefined)
    throw new Error('priorLoss: scheduled sampling needs ssRatio (see scheduledSamplingRatio)');
  // One mask for all rounds, per token (shared over the code dimension).
  const mask =
    nRounds > 1 ? E.less(E.randomUniform([b, n - 1, 1]), typeof ratio === 'number' ? E.scalar(ratio) : ratio!) : null;
  const scored: Tensor[] = [];
  let next = arInput;
  for (let i = 0; i < nRounds; i++) {
    const last = i === nRounds - 1;
    const frozen = cfg.noGradBeforeLastRound && !last;
    const { logits } = priorPredict(model, frozen ? E.stopGradient(next) : next);
    if (!frozen) scored.push(logits);
    if (!last) {
      const sampled = sampleCategorical(logits);
      const emb = E.embedding(E.stopGradient(model.quantizer.codebook()), sampled);
      next = E.concat([E.narrow(arInput, 1, 0, 1), E.where(E.broadcastTo(mask!, [b, n - 1, d]), emb, rest)], 1);
    }
  }
  const rounds = cfg.avgLossOverRounds ? scored : scored.slice(-1);
  // Equal-sized rounds: the mean of per-round CEs equals the CE over the stacked logits.
  const ces = rounds.map((l) => E.crossEntropy(l, labels));
  const loss =
    ces.length === 1
      ? ces[0]!
      : E.div(
          ces.reduce((a, c) => E.add(a, c)),
          ces.length,
        );
  return {
    loss,
    logits: rounds[0]!,
    top1: topkAccuracy(rounds[0]!, labels, 1),
    top5: topkAccuracy(rounds[0]!, labels, 5),
  };
}
