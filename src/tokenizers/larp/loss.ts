import * as E from '../../engine/core.js';
import type { Tensor } from '../../engine/core.js';
import type { LarpModel } from './model.js';
import { priorLoss } from './prior.js';

/**
 * LARP's tokenizer objective as graph code, for the shared training step (TrainStep takes a loss of a batch):
 *
 *   L = recon(x, x̂) + lossQWeight·(0.25·commit + 1.0·codebook) + priorWeight·CE_prior
 *
 * with the reference's weights (L1, 0.1, 0.06). Perceptual and adversarial terms belong to the shared loop.
 * Tokenizer, prior and all losses are one graph, so one compiled step trains them jointly.
 */
export interface LarpLossOptions {
  recon?: 'l1' | 'l2';
  lossQWeight?: number;
  /** Weight of the prior's cross-entropy (0 or a model without prior: no prior term). */
  priorWeight?: number;
  /** Prior rounds (default: the config's n_rounds). */
  priorRounds?: number;
  /** Range of batch.video: vtok's [-1, 1] (default) or LARP's [0, 1]. The loss is computed in LARP's range. */
  inputRange?: 'vtok' | 'larp';
  /**
   * Quantizer warm-up blend (scalar tensor, 0 = continuous latents, 1 = codes; StochasticVQ.forward). It also scales
   * the prior term, which like the commitment term pulls the encoder toward (predictable) codes.
   */
  alpha?: Tensor;
}

export interface LarpBatch extends Record<string, Tensor> {
  video: Tensor;
}

/** A batch may carry `ssRatio`, a scalar float32 tensor (scheduledSamplingRatio of the step) for the SS rounds. */
export interface LarpObjective {
  loss: Tensor;
  metrics: Record<string, Tensor>;
  /** The reconstruction in batch.video's range, for terms the caller adds (perceptual, adversarial). */
  recon: Tensor;
}

/** The loss terms of one batch, as graph code (compose it with other terms inside a traced loss). */
export function larpObjective(model: LarpModel, batch: LarpBatch, opts: LarpLossOptions = {}): LarpObjective {
  const lossQWeight = opts.lossQWeight ?? 0.1;
  const priorWeight = model.prior_model ? (opts.priorWeight ?? 0.06) : 0;
  const vtokRange = opts.inputRange !== 'larp';
  const x = vtokRange ? E.mul(E.add(batch.video, 1), 0.5) : batch.video;
  const enc = model.encode(x, opts.alpha);
  const recon = model.decode(enc.encoded).video;
  const rec = opts.recon === 'l2' ? E.mseLoss(recon, x) : E.l1Loss(recon, x);
  const a = opts.alpha;
  let loss = E.add(rec, E.mul(enc.lossQ, lossQWeight));
  const metrics: Record<string, Tensor> = {
    recon: rec,
    loss_q: enc.lossQ,
    commit: enc.lossCommit,
    codebook: enc.lossCodebook,
  };
  if (enc.lossEntropy) metrics.entropy = enc.lossEntropy;
  if (priorWeight > 0) {
    const p = priorLoss(model, enc.regularized_z, enc.indices, { ssRatio: batch.ssRatio, nRounds: opts.priorRounds });
    loss = E.add(loss, E.mul(p.loss, a ? E.mul(a, priorWeight) : priorWeight));
    Object.assign(metrics, { prior_ce: p.loss, prior_top1: p.top1, prior_top5: p.top5 });
  }
  return { loss, metrics, recon: vtokRange ? E.sub(E.mul(recon, 2), 1) : recon };
}

/**
 * The same as a TrainStep loss function: `new TrainStep(model, larpLoss(model), …)`. With `outputRecon`, the
 * reconstruction comes back from each step as outputs.recon (e.g. for a discriminator update).
 */
export function larpLoss(model: LarpModel, opts: LarpLossOptions & { outputRecon?: boolean } = {}) {
  return (batch: LarpBatch): { loss: Tensor; metrics: Record<string, Tensor>; outputs: Record<string, Tensor> } => {
    const o = larpObjective(model, batch, opts);
    return { loss: o.loss, metrics: o.metrics, outputs: opts.outputRecon ? { recon: o.recon } : {} };
  };
}
