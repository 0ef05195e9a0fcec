import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';

/**
 * Adversarial losses on discriminator logits (graph code), and LeCam regularisation, whose EMAs of the mean real
 * and fake logits are host-side numbers fed in as scalars (as Open-MAGVIT2 keeps them as Python floats).
 */
export type GanLoss = 'hinge' | 'non-saturating';

/** Discriminator loss: hinge 0.5·(mean relu(1 − real) + mean relu(1 + fake)), or the logistic one. */
export function discriminatorLoss(real: Tensor, fake: Tensor, kind: GanLoss): Tensor {
  if (kind === 'hinge') return E.mul(E.add(E.mean(E.relu(E.sub(1, real))), E.mean(E.relu(E.add(fake, 1)))), 0.5);
  return E.mul(E.add(E.mean(E.softplus(E.neg(real))), E.mean(E.softplus(fake))), 0.5);
}

/** Generator loss: −mean(fake) for hinge, mean softplus(−fake) for non-saturating. */
export function generatorLoss(fake: Tensor, kind: GanLoss): Tensor {
  return kind === 'hinge' ? E.neg(E.mean(fake)) : E.mean(E.softplus(E.neg(fake)));
}

/** LeCam: mean relu(real − ema_fake)² + mean relu(ema_real − fake)². */
export function lecam(real: Tensor, fake: Tensor, emaReal: Tensor, emaFake: Tensor): Tensor {
  return E.add(E.mean(E.square(E.relu(E.sub(real, emaFake)))), E.mean(E.square(E.relu(E.sub(emaReal, fake)))));
}

/** The EMAs LeCam compares against (decay 0.999 in the references), updated on the host after each D step. */
export class LecamEma {
  real = 0;
  fake = 0;
  constructor(readonly decay = 0.999) {}
  update(meanReal: number, meanFake: number): void {
    this.real = this.decay * this.real + (1 - this.decay) * meanReal;
    this.fake = this.decay * this.fake + (1 - this.decay) * meanFake;
  }
}
