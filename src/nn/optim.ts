import * as E from '../engine/core.js';
import type { Tensor } from '../engine/core.js';

/**
 * Optimizers as graph code: `update` runs inside the traced training step, so parameters and their state go in
 * and come out of one onnxruntime run with no per-element JS work. Per-step scalars (learning rate, bias
 * corrections) are computed on the host and fed in as scalar inputs.
 */
export interface Optimizer {
  readonly name: string;
  /** Names of the state tensors kept per parameter (each has the parameter's shape). */
  readonly slots: string[];
  /** Host-side scalars for step t (1-based) at learning rate lr, in the order `update` reads them. */
  scalars(t: number, lr: number): number[];
  update(p: Tensor, g: Tensor, state: Tensor[], scalars: Tensor[]): { p: Tensor; state: Tensor[] };
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** AdamW (decoupled weight decay, as torch.optim.AdamW); weightDecay 0 gives Adam. */
export class AdamW implements Optimizer {
  readonly name = 'adamw';
  readonly slots = ['exp_avg', 'exp_avg_sq'];
  readonly b1: number;
  readonly b2: number;
  readonly eps: number;
  readonly wd: number;
  constructor(o: AdamWOptions = {}) {
    [this.b1, this.b2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.wd = o.weightDecay ?? 0.01;
  }
  scalars(t: number, lr: number): number[] {
    // PyTorch's step: p −= lr/(1−β1^t) · m / (√v/√(1−β2^t) + eps). With c = √(1−β2^t) that is
    // p −= (lr·c/(1−β1^t)) · m / (√v + eps·c): the same value in one pass fewer over the parameters (the update is
    // memory-bound). Scalars: lr, lr·c/(1−β1^t), eps·c.
    const c = Math.sqrt(1 - this.b2 ** t);
    return [lr, (lr * c) / (1 - this.b1 ** t), this.eps * c];
  }
  update(p: Tensor, g: Tensor, [m, v]: Tensor[], [lr, stepSize, eps]: Tensor[]) {
    const m2 = E.add(E.mul(m!, this.b1), E.mul(g, 1 - this.b1));
    const v2 = E.add(E.mul(v!, this.b2), E.mul(E.square(g), 1 - this.b2));
    const decayed = this.wd ? E.sub(p, E.mul(p, E.mul(lr!, this.wd))) : p;
    return { p: E.sub(decayed, E.mul(E.div(m2, E.add(E.sqrt(v2), eps!)), stepSize!)), state: [m2, v2] };
  }
}

export interface SGDOptions {
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** SGD with optional momentum (PyTorch's formulation: buf = μ·buf + g), Nesterov and L2 weight decay. */
export class SGD implements Optimizer {
  readonly name = 'sgd';
  readonly slots: string[];
  constructor(readonly o: SGDOptions = {}) {
    this.slots = o.momentum ? ['momentum_buffer'] : [];
  }
  scalars(_t: number, lr: number): number[] {
    return [lr];
  }
  update(p: Tensor, g: Tensor, state: Tensor[], [lr]: Tensor[]) {
    let d = this.o.weightDecay ? E.add(g, E.mul(p, this.o.weightDecay)) : g;
    let newState: Tensor[] = [];
    if (this.o.momentum) {
      const buf = E.add(E.mul(state[0]!, this.o.momentum), d);
      newState = [buf];
      d = this.o.nesterov ? E.add(d, E.mul(buf, this.o.momentum)) : buf;
    }
    return { p: E.sub(p, E.mul(d, lr!)), state: newState };
  }
}

/** Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_). */
export function clipGradNorm(grads: Tensor[], maxNorm: number): { grads: Tensor[]; norm: Tensor } {
  const sq = grads.map((g) => E.sum(E.square(g)));
  const norm = E.sqrt(sq.reduce((a, b) => E.add(a, b)));
  const scale = E.minimum(E.div(E.scalar(maxNorm), E.add(norm, 1e-6)), E.scalar(1));
  return { grads: grads.map((g) => E.mul(g, scale)), norm };
}

/** Exponential moving average of weights: ema ← decay·ema + (1 − decay)·p. */
export function emaUpdate(ema: Tensor, p: Tensor, decay: number): Tensor {
  return E.add(E.mul(ema, decay), E.mul(p, 1 - decay));
}

// ---- learning-rate schedules (host-side: one number per step) ----

export type Schedule = (step: number) => number;

/** Linear warmup to `lr`, then cosine decay to `minLr` at `total` steps. */
export function warmupCosine(lr: number, warmup: number, total: number, minLr = 0): Schedule {
  return (t) => {
    if (t < warmup) return (lr * (t + 1)) / warmup;
    const p = Math.min(1, (t - warmup) / Math.max(1, total - warmup));
    return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * p));
  };
}

export const constantLr =
  (lr: number): Schedule =>
  () =>
    lr;
